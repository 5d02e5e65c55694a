// Preload for child processes (`node --import <this file's URL> …`): makes
// every @aws-sdk/* module unloadable, as if @aws-sdk/client-s3 were not
// installed, so a test fails if code it runs loads the SDK. ESM imports are
// refused by a resolve hook (module.register, Node >= 20.6), CommonJS
// require() by a wrapper around Module._resolveFilename. A module is refused
// by its specifier (`@aws-sdk/…`) or by where it resolved (`…/node_modules/@aws-sdk/…`).
import Module, { register } from 'node:module';

const isAwsSdk = (s) => /^@aws-sdk\//.test(s) || /[\\/]node_modules[\\/]@aws-sdk[\\/]/.test(s);
const BLOCKED = 'blocked by test/helpers/no-aws-sdk.mjs';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
const isAwsSdk = ${isAwsSdk.toString()};
function refuse(what) {
  const error = new Error(${JSON.stringify(BLOCKED)} + ': ' + what);
  error.code = 'ERR_MODULE_NOT_FOUND';
  throw error;
}
export async function resolve(specifier, context, nextResolve) {
  if (isAwsSdk(specifier)) refuse(specifier);
  const result = await nextResolve(specifier, context);
  if (isAwsSdk(decodeURIComponent(result.url))) refuse(result.url);
  return result;
}
`),
);

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const refuse = (what) => {
    const error = new Error(`${BLOCKED}: ${what}`);
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  };
  if (isAwsSdk(request)) refuse(request);
  const resolved = resolveFilename.call(this, request, ...rest);
  if (isAwsSdk(resolved)) refuse(resolved);
  return resolved;
};
