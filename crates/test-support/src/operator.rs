//! Runs the real `soc2-operator` binary against a test control plane: it
//! manages only the Controls its `--control-selector` matches, serves metrics
//! on a free loopback port, and is stopped when dropped (and, via
//! `--exit-with-parent`, when the test process dies).
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running operator process. Test-only: its methods panic with context.
pub struct Operator {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Operator {
    /// Starts the operator binary `bin` (in the root package's tests
    /// `env!("CARGO_BIN_EXE_soc2-operator")`) as `run` for the Controls
    /// matching the label selector `control_selector`, on the cluster of
    /// `kubeconfig`, with JSON logs, `--debounce 50ms`, without leader
    /// election unless `extra` sets `--leader-election` itself, then the
    /// `extra` flags; waits until it serves (30 s at most).
    ///
    /// Panics: the process cannot start, or does not serve within 30 s (with
    /// its logs).
    pub fn start(
        bin: &Path,
        kubeconfig: &Path,
        control_selector: &str,
        extra: &[&str],
    ) -> Operator {
        let mut cmd = Command::new(bin);
        cmd.args([
            "--log-format",
            "json",
            "run",
            "--metrics-addr",
            "127.0.0.1:0",
            "--exit-with-parent",
        ])
        .args(["--control-selector", control_selector])
        .args(["--debounce", "50ms"]);
        // `--leader-election` may be given once only.
        if !extra.iter().any(|a| a.starts_with("--leader-election")) {
            cmd.arg("--leader-election=false");
        }
        let mut child = cmd
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start soc2-operator");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(addr) = v.pointer("/fields/addr").and_then(|a| a.as_str())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => panic!(
                "the operator did not start serving; logs:\n{}",
                logs.lock().unwrap().join("\n")
            ),
        };
        Operator {
            child,
            base_url: format!("http://{addr}"),
            logs,
        }
    }

    /// GET `path` (e.g. `/readyz`) with a 5 s timeout: `(status code, body)`;
    /// `None` on any transport error.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .new_agent();
        let mut resp = agent.get(format!("{}{path}", self.base_url)).call().ok()?;
        let code = resp.status().as_u16();
        Some((code, resp.body_mut().read_to_string().ok()?))
    }

    /// The `/metrics` text (empty on error).
    pub fn metrics(&self) -> String {
        self.get("/metrics").map(|(_, b)| b).unwrap_or_default()
    }

    /// The value of the sample whose line starts with `series` (name plus
    /// labels exactly as rendered, e.g. `soc2_leader`), if present.
    pub fn sample(&self, series: &str) -> Option<f64> {
        metric_value(&self.metrics(), series)
    }

    /// Everything logged so far (JSON lines).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// SIGKILL: a crash, no Lease release.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (10 s at most, then SIGKILL) for a graceful exit;
    /// returns the exit status code (`None` when killed).
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        None
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of the sample `series` (name plus labels exactly as rendered,
/// e.g. `soc2_status_writes_total`) in the Prometheus text exposition `text`,
/// if present and numeric.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}
