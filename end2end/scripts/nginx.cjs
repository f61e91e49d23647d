// nginx (Debian's) as the load balancer of the tests, on loopback, with a configuration of
// its own in a temp folder, touching nothing of the system's nginx:
// `node scripts/nginx.cjs <port> <upstream port>...` balances round-robin over the
// instances on 127.0.0.1. It stops when this process is told to (Playwright ends its
// web servers so), and with --exit-with-stdin when its standard input closes;
// docs/deploy.md has the production form of the same configuration.
const { spawn } = require('node:child_process');
const { mkdtempSync, writeFileSync, rmSync, mkdirSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const args = process.argv.slice(2).filter((a) => a !== '--exit-with-stdin');
const [port, ...upstreams] = args.map(Number);
if (!port || upstreams.length === 0 || upstreams.some((p) => !p)) {
  console.error('usage: node scripts/nginx.cjs <port> <upstream port>...');
  process.exit(2);
}
// Inside the suite's data folder when there is one, which the suite's teardown removes
// even if this process is killed before it cleans up.
const dir = mkdtempSync(join(process.env.E2E_DATA_DIR ?? tmpdir(), 'jwt-auth-nginx-'));
for (const temp of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, temp));
const root = process.getuid && process.getuid() === 0;
const conf = `
daemon off;
${root ? 'user root;' : ''}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream app {
${upstreams.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_next_upstream off;
    }
  }
}
`;
writeFileSync(join(dir, 'nginx.conf'), conf);
const nginx = spawn('/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], {
  stdio: ['ignore', 'inherit', 'inherit'],
});
const stop = () => {
  nginx.kill('SIGQUIT');
};
nginx.on('exit', (code, signal) => {
  rmSync(dir, { recursive: true, force: true });
  process.exit(code ?? (signal ? 0 : 1));
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, stop);
if (process.argv.includes('--exit-with-stdin')) {
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}
