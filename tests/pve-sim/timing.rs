//! Realistic timing on demand, and the timeline a test measures it by.
//!
//! In `sim.json` (all absent or 0 by default, so the simulator answers at once):
//!
//! ```text
//! clone_ms     a clone's copy time, inside the per-storage lock (Proxmox's pve-storage-ID lock)
//! boot_ms      `qm start` -> the guest's sshd answering (`qm start` itself returns at once,
//!              as Proxmox's does: a booter process of the simulator starts the sshd later)
//! agent_ms     the guest agent answering after the boot (`qm guest cmd` says "QEMU guest
//!              agent is not running" until then)
//! install_ms   the nixos-anywhere stand-in's install phase (tests/sandbox/nixos-anywhere
//!              reads it from here)
//! time_scale   a factor on all of them (default 1; 0.1 makes a 2 s boot 200 ms)
//! ```
//!
//! `timeline.jsonl` in the state directory gets one line per interval edge, from every process
//! (appended whole with O_APPEND): `{"t": SECONDS_SINCE_EPOCH, "what": "clone"|"boot"|"install",
//! "phase": "start"|"end", "vmid": N, "storage": S}` (`storage` on clones only; the stand-in
//! writes the install lines). A test reads it to check that clones never overlap on one storage
//! while other steps do.

use std::fs;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::sim::Sim;

impl Sim {
    /// The `time_scale` factor (1 when absent; a negative or non-number one is 1 too).
    pub(crate) fn time_scale(&self) -> f64 {
        self.settings
            .get("time_scale")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(1.0)
    }

    /// The duration setting `key` (milliseconds), scaled by `time_scale`.
    pub(crate) fn timed(&self, key: &str) -> Duration {
        self.setting_ms(key, 0).mul_f64(self.time_scale())
    }

    /// Appends one edge of an interval to `timeline.jsonl`.
    pub(crate) fn timeline(&self, what: &str, phase: &str, vmid: u32, storage: Option<&str>) {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let mut v =
            json!({"t": (t * 1e6).round() / 1e6, "what": what, "phase": phase, "vmid": vmid});
        if let Some(s) = storage {
            v["storage"] = json!(s);
        }
        let mut line = v.to_string();
        line.push('\n');
        // One write of one line with O_APPEND: lines of concurrent processes never mix.
        let _ = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("timeline.jsonl"))
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }

    fn agent_ready_path(&self, vmid: u32) -> std::path::PathBuf {
        self.dir.join("agent-ready").join(vmid.to_string())
    }

    /// A start: the guest agent answers `after` from now.
    pub(crate) fn set_agent_ready(&self, vmid: u32, after: Duration) {
        let at = SystemTime::now() + after;
        let ms = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        self.write(&self.agent_ready_path(vmid), &format!("{ms}\n"));
    }

    /// Whether the guest agent of a started VM has come up (always, without timing).
    pub(crate) fn agent_ready(&self, vmid: u32) -> bool {
        let Some(at) = fs::read_to_string(self.agent_ready_path(vmid))
            .ok()
            .and_then(|t| t.trim().parse::<u128>().ok())
        else {
            return true;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        now >= at
    }
}
