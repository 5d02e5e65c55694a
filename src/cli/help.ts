/** `--help` texts, built from the option table so they cannot drift from it. */
import { EXIT } from './exit-codes.js';
import { envName, OPTIONS, type CommandName, type OptionSpec } from './options.js';

const BIN = 's3-workspace-sync';

/** The commands' descriptions and examples, in --help's order. */
const COMMANDS: Record<CommandName, { usage: string; summary: string; about: string; examples: string[] }> = {
  pull: {
    usage: `${BIN} pull [options]`,
    summary: 'make the directory match the bucket prefix (downloads only what changed)',
    about:
      'Downloads new and changed objects, then deletes local files whose objects are gone. Local changes made since\n' +
      'the last sync are kept (not overwritten, not deleted) unless --overwrite-local-changes; nothing is ever lost:\n' +
      'a file that cannot be proven to be in the bucket is moved to DIR/.s3-workspace-sync/recovered/ first.',
    examples: [
      `${BIN} pull --bucket my-bucket --prefix users/u1/workspace/ --dir ./workspace`,
      `${BIN} pull -b my-bucket -p users/u1/ -d /tmp/ws --endpoint http://127.0.0.1:9000 --path-style`,
      `S3WS_BUCKET=my-bucket S3WS_PREFIX=users/u1/ ${BIN} pull --dir . --priority AGENTS.md --priority config/`,
    ],
  },
  push: {
    usage: `${BIN} push [options]`,
    summary: 'make the bucket prefix match the directory (uploads only what changed)',
    about:
      'Uploads new and changed files, then deletes the objects of files deleted locally since the last sync (a first\n' +
      'push deletes nothing). Deletions do not run if any upload failed. Secrets (.env, SSH keys, .aws/…) and\n' +
      'node_modules/ are never uploaded unless re-included in .syncignore.',
    examples: [
      `${BIN} push --bucket my-bucket --prefix users/u1/workspace/ --dir ./workspace`,
      `${BIN} push -b my-bucket -p users/u1/ -d . --exclude '*.log' --exclude 'tmp/' --max-deletes 10`,
      `${BIN} push -b my-bucket -p users/u1/ -d . --dry-run`,
    ],
  },
  plan: {
    usage: `${BIN} plan pull|push [options]`,
    summary: 'show what a pull or push would do, change nothing',
    about:
      'Lists the uploads or downloads, deletions, conflicts and files that cannot be synced, as the sync itself would\n' +
      'decide them (it lists the bucket and hashes changed files). Exits 4 when a guard would refuse the sync, 3\n' +
      'when it would stop on conflicts, 1 when some files could not be synced.',
    examples: [`${BIN} plan push -b my-bucket -p users/u1/ -d ./workspace`, `${BIN} plan pull -b my-bucket -p users/u1/ -d ./workspace --json | jq .plan.transfers`],
  },
  status: {
    usage: `${BIN} status [options]`,
    summary: 'what differs locally and remotely, without transferring (plans both ways)',
    about: 'Plans a push and a pull and shows local changes, remote changes and conflicts. Changes nothing.',
    examples: [`${BIN} status -b my-bucket -p users/u1/ -d ./workspace`],
  },
  verify: {
    usage: `${BIN} verify [options]`,
    summary: 'compare every file with its object (hashes, no downloads), change nothing',
    about: 'Exact comparison of the directory and the prefix. Exits 0 when they hold the same files, 1 when they differ.',
    examples: [`${BIN} verify -b my-bucket -p users/u1/ -d ./workspace`],
  },
  watch: {
    usage: `${BIN} watch [options]`,
    summary: 'push local changes as they happen, until stopped (SIGTERM, SIGINT)',
    about:
      'Watches the directory and pushes what changed once nothing changed for --debounce, and at least every\n' +
      '--max-delay under continuous writes; each push looks only at the paths seen changing, and a full push every\n' +
      '--reconcile catches what a watcher can miss. Before watching: --initial pull (default: restore the directory\n' +
      'from the prefix), push, or none. Prints a line per push (JSON: push-start, push-end).\n' +
      '\n' +
      'Stopping: the first SIGTERM or SIGINT stops watching, pushes everything (a full push, so nothing a watcher\n' +
      'missed is lost) and exits with that push\'s code (0, 1 files failed, 3 conflict, 4 refused, 5 could not\n' +
      'push); a second signal exits at once (130). Nothing bounds that last push but the push itself (--timeout\n' +
      'bounds every push): it must finish before the process is killed. ECS/Fargate sends SIGKILL 30 s after\n' +
      'SIGTERM by default (stopTimeout, up to 120 s); --max-delay bounds how long a change waits, so how much is\n' +
      'pending then.',
    examples: [
      `${BIN} watch --bucket my-bucket --prefix users/u1/workspace/ --dir ./workspace`,
      `${BIN} watch -b my-bucket -p users/u1/ -d /workspace --initial none --debounce 500ms --max-delay 5s --timeout 25s`,
      `S3WS_BUCKET=my-bucket S3WS_PREFIX=users/u1/ ${BIN} watch -d /workspace --json | jq -c 'select(.type == "push-end")'`,
    ],
  },
};

function optionLines(options: readonly OptionSpec[]): string[] {
  const left = (o: OptionSpec): string =>
    o.noFlag ? `${envName(o.flag)}=…` : `${o.short ? `-${o.short}, ` : '    '}--${o.flag}${o.arg ? ` ${o.arg}` : ''}`;
  const width = Math.min(36, Math.max(...options.map((o) => left(o).length)) + 2);
  return options.map((o) => {
    const l = left(o);
    return l.length >= width ? `  ${l}\n  ${' '.repeat(width)}${o.help}` : `  ${l.padEnd(width)}${o.help}`;
  });
}

function groups(command: CommandName | undefined): string[] {
  const out: string[] = [];
  const applicable = OPTIONS.filter((o) => command === undefined || o.only === undefined || o.only.includes(command));
  for (const group of ['Location', 'Sync', 'Watch', 'Guards', 'Transfers', 'Output'] as const) {
    const options = applicable.filter((o) => o.group === group);
    if (options.length === 0) continue;
    out.push('', `${group === 'Location' ? 'Where' : group === 'Sync' ? 'What' : group === 'Watch' ? 'Watch mode' : group}:`, ...optionLines(options));
  }
  out.push('  -h, --help                          this help', '  -V, --version                       the version');
  return out;
}

const FOOTER = [
  '',
  'Environment: every option also as S3WS_<OPTION> (S3WS_BUCKET, S3WS_MAX_DELETES, S3WS_EXCLUDE="a,b"…; booleans 1/0).',
  'Credentials come only from the AWS SDK\'s provider chain: AWS_ACCESS_KEY_ID…, AWS_PROFILE or --profile, SSO, roles.',
  'Config file (JSON, keys in camelCase: {"bucket": "…", "maxDeletes": 10, "exclude": ["*.log"]}): --config PATH,',
  'else S3WS_CONFIG, else ./s3-workspace-sync.json, else $XDG_CONFIG_HOME/s3-workspace-sync/config.json',
  '(~/.config/…). Precedence: flags > environment > config file > defaults.',
  '',
  'Output: a progress display and a summary on a terminal (watch: a line per push); otherwise (or --json) one JSON',
  'object per line, the last one {"type":"result","exitCode":…}. NO_COLOR turns colours off.',
  '',
  `Exit codes: ${EXIT.OK} done, ${EXIT.INCOMPLETE} some files failed (or verify: differences), ${EXIT.USAGE} usage/configuration error,`,
  `${EXIT.CONFLICT} unresolved conflict, ${EXIT.REFUSED} refused by a guard, ${EXIT.ERROR} could not run (bucket, credentials, network…),`,
  `${EXIT.INTERRUPTED} interrupted (SIGINT/SIGTERM; a second signal forces exit). watch: a signal ends it with its last push's code.`,
];

/** Help of the whole tool, or of one command. */
export function helpText(command: CommandName | undefined): string {
  if (command === undefined) {
    const lines = [
      `Usage: ${BIN} <command> [options]`,
      '',
      'Keep a local workspace directory and an S3 bucket prefix in step.',
      '',
      'Commands:',
      ...(Object.keys(COMMANDS) as CommandName[]).map((c) => `  ${(c === 'plan' ? 'plan pull|push' : c).padEnd(16)}${COMMANDS[c].summary}`),
      '',
      `Run '${BIN} <command> --help' for the options of a command.`,
      ...groups(undefined),
      '',
      'Examples:',
      `  ${BIN} pull --bucket my-bucket --prefix users/u1/workspace/ --dir ./workspace`,
      `  ${BIN} push --bucket my-bucket --prefix users/u1/workspace/ --dir ./workspace`,
      `  ${BIN} status --bucket my-bucket --prefix users/u1/workspace/ --dir ./workspace`,
      ...FOOTER,
    ];
    return `${lines.join('\n')}\n`;
  }
  const c = COMMANDS[command];
  const lines = [`Usage: ${c.usage}`, '', `${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.`, '', c.about, ...groups(command), '', 'Examples:', ...c.examples.map((e) => `  ${e}`), ...FOOTER];
  return `${lines.join('\n')}\n`;
}
