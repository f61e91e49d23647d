// maildev (a real SMTP server that keeps what it receives and serves it over HTTP) on
// loopback, for the tests: `node scripts/maildev.cjs <smtp port> <web port>`.
// With --exit-with-stdin it stops when its standard input closes, i.e. when the process
// that started it ends, however that process ends.
const MailDev = require('maildev');

const [smtp, web] = process.argv.slice(2, 4).map(Number);
if (!smtp || !web) {
  console.error('usage: node scripts/maildev.cjs <smtp port> <web port> [--exit-with-stdin]');
  process.exit(2);
}
const server = MailDev({ smtp, web, ip: '127.0.0.1', webIp: '127.0.0.1', silent: true });
server.listen();
if (process.argv.includes('--exit-with-stdin')) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}
