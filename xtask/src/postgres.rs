//! A throwaway PostgreSQL server for the integration tests: its own data folder in a temp
//! dir, a private loopback port, stopped and removed on drop (also when tests fail).

use crate::{
    setup::postgres_bin_dir,
    util::{command, free_port, is_root, run},
};
use std::{fs, path::PathBuf, process::Command};

pub struct Throwaway {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The server's options (`pg_ctl start -o`), for whoever starts it again.
    options: String,
}

impl Throwaway {
    pub fn start() -> Result<Throwaway, String> {
        let bin = postgres_bin_dir().ok_or("PostgreSQL server binaries not found")?;
        let dir = std::env::temp_dir().join(format!("xtask-postgres-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let port = free_port()?;
        // From here on, dropping `server` stops and removes whatever was started.
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=200",
            dir.display()
        );
        let server = Throwaway {
            dir,
            bin,
            port,
            options,
        };
        if is_root() {
            // PostgreSQL refuses to run as root.
            run(command("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir))?;
        }
        let data = server.dir.join("data");
        run(server
            .as_postgres(server.bin.join("initdb"))
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data))?;
        run(server
            .as_postgres(server.bin.join("pg_ctl"))
            .args(["start", "--wait", "--silent", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(server.dir.join("server.log"))
            .args(["-o", &server.options]))?;
        println!("    PostgreSQL listening on 127.0.0.1:{}", server.port);
        Ok(server)
    }

    /// A superuser URL of the server's default database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// What a test needs to stop and start this server itself (the fault tests): its
    /// folder (data and log), its programs, its options and whom it runs as.
    pub fn control_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FAULT_PG_DIR", self.dir.display().to_string()),
            ("FAULT_PG_BIN", self.bin.display().to_string()),
            ("FAULT_PG_OPTIONS", self.options.clone()),
            (
                "FAULT_PG_USER",
                if is_root() {
                    "postgres".into()
                } else {
                    String::new()
                },
            ),
        ]
    }

    fn as_postgres(&self, program: PathBuf) -> Command {
        if is_root() {
            let mut cmd = command("runuser");
            cmd.args(["-u", "postgres", "--"])
                .arg(program)
                .current_dir(&self.dir);
            cmd
        } else {
            let mut cmd = command(program);
            cmd.current_dir(&self.dir);
            cmd
        }
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = run(self
                .as_postgres(self.bin.join("pg_ctl"))
                .args(["stop", "--wait", "--silent", "-m", "fast", "-D"])
                .arg(&data));
        }
        let _ = fs::remove_dir_all(&self.dir);
        println!("    PostgreSQL stopped and removed");
    }
}
