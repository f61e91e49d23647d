//! The real server binary, run as a child process: for what only a process of its own can
//! show (its metrics recorder, its log, being killed).

use serde_json::Value;
use std::{
    collections::HashSet,
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
    time::Duration,
};

/// The real binary in a process of its own: its own metrics recorder, and its log.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `server` with JSON logs and `vars`, and waits until it listens (and its
    /// metrics listener too, when `METRICS_ADDR` is among `vars`).
    pub fn start(vars: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start_in(dir.path(), vars);
        server._dir = Some(dir);
        server
    }

    /// Starts it in `dir` (its database, unless `vars` say otherwise, and key files live
    /// there), which outlives it: a server started again in `dir` finds everything.
    pub fn start_in(dir: &Path, vars: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
        command
            .current_dir(dir)
            .env("DATABASE_URL", format!("sqlite://{}/app.db", dir.display()))
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env_remove("METRICS_ADDR")
            .env_remove("SMTP_URL")
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("run server");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (lines, listening) = mpsc::channel::<String>();
        let read = |stream: Box<dyn Read + Send>| {
            let (log, lines) = (log.clone(), lines.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line.clone());
                    let _ = lines.send(line);
                }
            })
        };
        let readers = vec![
            read(Box::new(child.stdout.take().unwrap())),
            read(Box::new(child.stderr.take().unwrap())),
        ];
        // Only the readers' senders are left: the channel closes when the process ends.
        drop(lines);
        // Owned from here on, so a start that fails below kills the process (on drop).
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: None,
            log: log.clone(),
            readers,
            _dir: None,
        };
        let wants_metrics = vars.iter().any(|(k, _)| *k == "METRICS_ADDR");
        let (mut addr, mut metrics_addr) = (None, None);
        while addr.is_none() || (wants_metrics && metrics_addr.is_none()) {
            let line = listening
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("the server did not listen ({e}): {:?}", log.lock()));
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let fields = &event["fields"];
            let bound = || -> SocketAddr { fields["addr"].as_str().unwrap().parse().unwrap() };
            match fields["message"].as_str() {
                Some("listening") => addr = Some(bound()),
                Some("metrics listening") => metrics_addr = Some(bound()),
                _ => {}
            }
        }
        server.addr = addr.unwrap();
        server.metrics_addr = metrics_addr;
        server
    }

    /// What it has written so far, stdout and stderr, a line an entry.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The TCP sockets the process listens on (Linux: its descriptors against
    /// `/proc/net/tcp*`).
    pub fn listening_sockets(&self) -> usize {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).unwrap();
        let sockets: HashSet<String> = fds
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter_map(|target| {
                let target = target.to_str()?;
                Some(
                    target
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .to_string(),
                )
            })
            .collect();
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .flat_map(|table| {
                let table = std::fs::read_to_string(table).unwrap_or_default();
                table
                    .lines()
                    .skip(1)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|row| {
                let columns: Vec<&str> = row.split_whitespace().collect();
                // State 0A is LISTEN; column 9 the socket's inode.
                columns.get(3) == Some(&"0A")
                    && columns.get(9).is_some_and(|i| sockets.contains(*i))
            })
            .count()
    }

    /// Stops it as SIGTERM does and returns everything it wrote, stdout and stderr.
    pub fn stop(mut self) -> Vec<String> {
        // SAFETY: signalling our own child process by its id.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) },
            0
        );
        let status = self.child.wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        assert!(status.success(), "{status}");
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Server {
    /// Kills it outright (SIGKILL: no shutdown, whatever it was doing).
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test must not leave the process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
