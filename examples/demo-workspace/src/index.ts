import { runAgent } from './agent.js';
import { formatDuration } from './utils/format.js';

const question = process.argv.slice(2).join(' ').trim();
if (question === '') {
  console.error('usage: npm start -- "<question>"');
  process.exit(2);
}

const started = Date.now();
const report = await runAgent(question);
console.log(`${report.findings.length} findings in ${formatDuration(Date.now() - started)}`);
