//! `qm snapshot`, `qm listsnapshot`, `qm rollback` and `qm delsnapshot`.

use crate::conf::*;
use crate::sim::Sim;
use crate::{die, options, param_error};

impl Sim {
    pub(crate) fn qm_snapshot(&self, a: &[&str]) {
        const USAGE: &str = "qm snapshot <vmid> <snapname> [OPTIONS]";
        if a.len() < 2 {
            die(&format!("400 not enough arguments\n{USAGE}"));
        }
        let _g = self.lock();
        let (id, mut conf) = self.load_local(a[0]);
        let name = a[1];
        let opts = options(&a[2..], USAGE);
        if !is_config_id(name) {
            param_error(
                "snapname",
                &format!("invalid format - invalid configuration ID '{name}'"),
                USAGE,
            );
        }
        Self::check_lock(&conf);
        if conf.snaps.iter().any(|s| s.name == name) {
            die(&format!("snapshot name '{name}' already used"));
        }
        let mut entries: Vec<(String, String)> = conf.main.clone();
        unset(&mut entries, "lock");
        entries.push(("snaptime".into(), now_epoch().to_string()));
        if opts.get("vmstate").map(String::as_str) == Some("1") && self.running(id) {
            entries.push(("vmstate".into(), format!("local:state-{name}")));
        }
        conf.snaps.push(Snap {
            name: name.to_string(),
            description: opts.get("description").cloned(),
            entries,
        });
        set(&mut conf.main, "parent", name.to_string());
        self.save(id, &conf);
    }

    pub(crate) fn qm_listsnapshot(&self, a: &[&str]) {
        let (_, conf) = self.load_local(a.first().copied().unwrap_or(""));
        fn walk(conf: &Conf, parent: Option<&str>, depth: usize, current_parent: Option<&str>) {
            for s in conf
                .snaps
                .iter()
                .filter(|s| parent_of(&s.entries).as_deref() == parent)
            {
                let time = get(&s.entries, "snaptime")
                    .and_then(|t| t.parse().ok())
                    .map(format_time)
                    .unwrap_or_default();
                let desc = s
                    .description
                    .as_deref()
                    .and_then(|d| d.lines().next())
                    .filter(|d| !d.is_empty())
                    .unwrap_or("no-description");
                println!(
                    "{}`-> {:<width$} {:<19}     {}",
                    "  ".repeat(depth),
                    s.name,
                    time,
                    desc,
                    width = 25usize.saturating_sub(depth * 2)
                );
                walk(conf, Some(&s.name), depth + 1, current_parent);
                if current_parent == Some(s.name.as_str()) {
                    print_current(depth + 1);
                }
            }
        }
        fn print_current(depth: usize) {
            println!(
                "{}`-> {:<width$} {:<19}     You are here!",
                "  ".repeat(depth),
                "current",
                "",
                width = 25usize.saturating_sub(depth * 2)
            );
        }
        let cur = parent_of(&conf.main);
        walk(&conf, None, 0, cur.as_deref());
        if cur.is_none() {
            print_current(0);
        }
    }

    pub(crate) fn qm_snapshot_change(&self, sub: &str, a: &[&str]) {
        if a.len() < 2 {
            die(&format!(
                "400 not enough arguments\nqm {sub} <vmid> <snapname>"
            ));
        }
        let _g = self.lock();
        let (id, mut conf) = self.load_local(a[0]);
        Self::check_lock(&conf);
        let name = a[1];
        let Some(pos) = conf.snaps.iter().position(|s| s.name == name) else {
            die(&format!("snapshot '{name}' does not exist"))
        };
        if sub == "rollback" {
            let snap = conf.snaps[pos].clone();
            let mut main = snap.entries.clone();
            unset(&mut main, "snaptime");
            unset(&mut main, "vmstate");
            set(&mut main, "parent", name.to_string());
            conf.main = main;
            self.stop_guest(id);
            self.set_running(id, false);
        } else {
            let removed = conf.snaps.remove(pos);
            let grand = get(&removed.entries, "parent").map(str::to_string);
            let fix = |entries: &mut Vec<(String, String)>| {
                if get(entries, "parent") == Some(name) {
                    match &grand {
                        Some(g) => set(entries, "parent", g.clone()),
                        None => unset(entries, "parent"),
                    }
                }
            };
            fix(&mut conf.main);
            for s in &mut conf.snaps {
                fix(&mut s.entries);
            }
        }
        self.save(id, &conf);
    }
}
