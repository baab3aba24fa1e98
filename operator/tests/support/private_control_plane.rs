//! A control plane of one test's own (scripts/control-plane.sh in a temp
//! state dir), for tests that break it: restart the kube-apiserver, pause
//! etcd. The shared control plane other tests run on is never touched.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use otpilot_tests::TestCluster;

/// The control plane's processes; `down` when dropped.
pub struct PrivateControlPlane {
    dir: tempfile::TempDir,
    kubeconfig: String,
    /// API servers this test started again: reaped after `down`.
    restarted: Mutex<Vec<Child>>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/control-plane.sh")
}

impl PrivateControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager on free
    /// loopback ports, and installs the CRDs.
    pub async fn up() -> (Self, TestCluster) {
        let (plane, cluster) = Self::up_without_crds().await;
        cluster.install_crds().await.expect("CRDs");
        (plane, cluster)
    }

    /// [`Self::up`] without otpilot's CRDs: for a test that installs
    /// others first (an earlier version's).
    pub async fn up_without_crds() -> (Self, TestCluster) {
        let dir = tempfile::Builder::new()
            .prefix("otpilot-private-cp-")
            .tempdir()
            .expect("temp dir");
        let output = Command::new(script())
            .arg("up")
            .env("OTPILOT_CP_DIR", dir.path().join("cp"))
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/control-plane.sh up");
        assert!(
            output.status.success(),
            "private control plane did not start:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let kubeconfig = dir
            .path()
            .join("cp/kubeconfig")
            .to_string_lossy()
            .into_owned();
        let plane = Self {
            dir,
            kubeconfig,
            restarted: Mutex::new(Vec::new()),
        };
        let cluster = TestCluster::from_kubeconfig(plane.kubeconfig.clone())
            .await
            .expect("connect to the private control plane");
        (plane, cluster)
    }

    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    fn state(&self, file: &str) -> PathBuf {
        self.dir.path().join("cp").join(file)
    }

    fn pid(&self, component: &str) -> u32 {
        self.try_pid(component).expect("pid file")
    }

    fn try_pid(&self, component: &str) -> Option<u32> {
        std::fs::read_to_string(self.state(&format!("{component}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn signal(&self, component: &str, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid(component).to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {component}");
    }

    /// SIGSTOP to etcd: every write and read the API server makes hangs.
    pub fn pause_etcd(&self) {
        self.signal("etcd", "-STOP");
    }

    pub fn resume_etcd(&self) {
        self.signal("etcd", "-CONT");
    }

    /// Kills the kube-apiserver (SIGKILL: a crash or a lost node; SIGTERM
    /// lets it drain watches for up to a minute, too long to hit a chosen
    /// moment) and returns its command line, for [`Self::start_apiserver`].
    pub fn kill_apiserver(&self) -> Vec<String> {
        let pid = self.pid("kube-apiserver");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("apiserver cmdline");
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        self.signal("kube-apiserver", "-KILL");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            assert!(Instant::now() < deadline, "kube-apiserver did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
        args
    }

    /// Starts the kube-apiserver again with `args` (same ports, same
    /// certificates) and waits until it is ready.
    // The child is kept in `restarted` and reaped in `drop`.
    #[allow(clippy::zombie_processes)]
    pub async fn start_apiserver(&self, args: &[String], cluster: &TestCluster) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.state("kube-apiserver.log"))
            .expect("apiserver log");
        let child = Command::new(&args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start kube-apiserver");
        // `down` stops it by this PID.
        std::fs::write(self.state("kube-apiserver.pid"), child.id().to_string()).expect("pid file");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if cluster.client().apiserver_version().await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver did not come back"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true)
}

impl Drop for PrivateControlPlane {
    fn drop(&mut self) {
        // A paused etcd would not stop on SIGTERM.
        if let Some(pid) = self.try_pid("etcd") {
            let _ = Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        }
        let _ = Command::new(script())
            .arg("down")
            .env("OTPILOT_CP_DIR", self.dir.path().join("cp"))
            .stdin(Stdio::null())
            .output();
        for mut child in self
            .restarted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
