//! The deployment operators run today, with srtp-relay in rtpengine's place: two baresip user
//! agents register with a Kamailio proxy whose `rtpengine` module drives `srtp-relay serve`
//! over the ng protocol; alice (SDES SRTP, `mediaenc=srtp-mand`) calls bob (plain RTP). Each
//! plays the same file; each records what it receives; both recordings must match the file.
//!
//! Needs Debian's kamailio, baresip-core and ffmpeg (scripts/test.sh installs them): the
//! test fails, not skips, without them.

mod media;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use media::{require, samples, similarity_within, source, workdir};

const SIP: u16 = 25060;
const NG: u16 = 25223;

/// Starts `c` in a process group of its own (kamailio forks its workers), logging to `log`.
fn spawn(mut c: Command, log: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    let f = std::fs::File::create(log).unwrap();
    c.stdout(Stdio::from(f.try_clone().unwrap()))
        .stderr(Stdio::from(f))
        .process_group(0);
    c.spawn().unwrap()
}

/// Processes ended with their whole process group when the test ends, however it ends:
/// SIGTERM first (kamailio stops its workers), SIGKILL after two seconds.
struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        let group = |signal: &str, c: &Child| {
            let _ = Command::new("kill")
                .args([signal, "--", &format!("-{}", c.id())])
                .stderr(Stdio::null())
                .status();
        };
        for c in &self.0 {
            group("-TERM", c);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for c in &mut self.0 {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            group("-KILL", c);
            let _ = c.wait();
        }
    }
}

fn kamailio_cfg(dir: &Path) -> std::path::PathBuf {
    let cfg = format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
listen=udp:127.0.0.1:{SIP}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "rtpengine.so"
modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:{NG}")
request_route {{
  if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
  if (is_method("REGISTER")) {{ save("location"); exit; }}
  if (has_totag()) {{
    if (loose_route()) {{
      if (is_method("BYE")) {{ rtpengine_delete(); }}
      t_relay();
      exit;
    }}
    if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    sl_send_reply("404", "Not here");
    exit;
  }}
  if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
  record_route();
  if (is_method("INVITE") && has_body("application/sdp")) {{
    rtpengine_offer("RTP/AVP replace-origin replace-session-connection ICE=remove");
    t_on_reply("REPLY");
  }}
  if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
  t_relay();
}}
onreply_route[REPLY] {{
  if (has_body("application/sdp")) {{
    rtpengine_answer("RTP/SAVP replace-origin replace-session-connection ICE=remove");
  }}
}}
"#
    );
    let path = dir.join("kamailio.cfg");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// A baresip configuration folder for `name` on SIP port `sip` with control port `ctrl`.
fn baresip_dir(dir: &Path, wav: &Path, name: &str, sip: u16, ctrl: u16, srtp: bool) {
    let d = dir.join(name);
    std::fs::create_dir_all(d.join("rec")).unwrap();
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{sip}\nsip_trans_def udp\n\
         net_interface 127.0.0.1\naudio_source aufile,{wav}\naudio_alert none\n\
         audio_srate 8000\naudio_channels 1\nmodule_path /usr/lib/baresip/modules\n\
         module g711.so\nmodule aufile.so\nmodule sndfile.so\nmodule srtp.so\n\
         module_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n\
         ctrl_tcp_listen 127.0.0.1:{ctrl}\nsnd_path {rec}\n",
        wav = wav.display(),
        rec = d.join("rec").display()
    );
    std::fs::write(d.join("config"), config).unwrap();
    let enc = if srtp { ";mediaenc=srtp-mand" } else { "" };
    let account = format!(
        "<sip:{name}@127.0.0.1>;auth_pass=none;outbound=\"sip:127.0.0.1:{SIP}\";\
         regint=600;answermode=auto{enc}\n"
    );
    std::fs::write(d.join("accounts"), account).unwrap();
}

/// Sends one ctrl_tcp command (a netstring of JSON) to a baresip.
fn control(port: u16, command: &str, params: &str) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        panic!("baresip control port {port} is not answering");
    };
    let json = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
    let _ = s.write_all(format!("{}:{json},", json.len()).as_bytes());
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf);
}

#[test]
fn kamailio_and_baresip_call_through_srtp_relay() {
    require("kamailio", "kamailio");
    require("baresip", "baresip-core");
    let dir = workdir("kamailio");
    let wav = source(&dir); // 3 s; baresip's aufile loops it
    let relay = Command::new(env!("CARGO_BIN_EXE_srtp-relay"));
    let mut relay = relay;
    relay
        .args(["serve", "--state-dir"])
        .arg(dir.join("state"))
        .args([
            "--ng-listen",
            &format!("127.0.0.1:{NG}"),
            "--api-listen",
            "127.0.0.1:25443",
            "--ports",
            "47000-47999",
            "--workers",
            "1",
        ]);
    let mut procs = Killed(vec![spawn(relay, &dir.join("relay.log"))]);
    if let Err(e) = media::wait_bound(NG, &mut procs.0[0], Duration::from_secs(15)) {
        panic!("the relay's ng port: {e}");
    }
    let mut kam = Command::new("kamailio");
    kam.arg("-f")
        .arg(kamailio_cfg(&dir))
        .args(["-DD", "-E", "-Y"])
        .arg(&dir)
        .arg("-w")
        .arg(&dir);
    procs.0.push(spawn(kam, &dir.join("kamailio.log")));
    if let Err(e) = media::wait_bound(SIP, &mut procs.0[1], Duration::from_secs(15)) {
        panic!("kamailio's SIP port: {e}");
    }
    baresip_dir(&dir, &wav, "alice", 25070, 24444, true);
    baresip_dir(&dir, &wav, "bob", 25080, 24445, false);
    for name in ["bob", "alice"] {
        let mut b = Command::new("baresip");
        b.arg("-4")
            .arg("-f")
            .arg(dir.join(name))
            .current_dir(dir.join(name));
        procs.0.push(spawn(b, &dir.join(format!("{name}.log"))));
    }
    // Every step waits for what it needs, not for a fixed time: a cold machine starts the
    // user agents and sets the call up slower.
    let logs = [dir.join("alice.log"), dir.join("bob.log")];
    let until = |what: &str, done: &dyn Fn(&str) -> bool| {
        let end = Instant::now() + Duration::from_secs(30);
        while !logs
            .iter()
            .all(|l| done(&std::fs::read_to_string(l).unwrap_or_default()))
        {
            assert!(Instant::now() < end, "{what} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    until("the user agents did not register", &|l| {
        l.contains("200 OK")
    });
    control(24444, "dial", "sip:bob@127.0.0.1");
    until("the call was not established", &|l| {
        l.contains("Call established")
    });
    // Four seconds of media each way (the similarity needs about 1.5 s).
    std::thread::sleep(Duration::from_secs(4));
    control(24444, "hangup", "");
    until("the call did not end", &|l| l.contains("terminated"));
    for port in [24444, 24445] {
        control(port, "quit", "");
    }
    // The recordings are complete once baresip has exited (it finalises them on the way).
    let end = Instant::now() + Duration::from_secs(15);
    for c in &mut procs.0[2..] {
        while matches!(c.try_wait(), Ok(None)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    drop(procs);

    let alice_log = std::fs::read_to_string(dir.join("alice.log")).unwrap_or_default();
    assert!(
        alice_log.contains("Using media encryption 'srtp-mand'"),
        "alice did not use SRTP"
    );
    let relay_log = std::fs::read_to_string(dir.join("relay.log")).unwrap_or_default();
    assert!(relay_log.contains("command=\"offer\"") && relay_log.contains("command=\"answer\""));
    let want = samples(&wav);
    for name in ["alice", "bob"] {
        let rec = std::fs::read_dir(dir.join(name).join("rec"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .unwrap_or_else(|| panic!("{name} recorded nothing"));
        let s = similarity_within(&want, &samples(&rec), 40000);
        eprintln!("{name} received audio with similarity {s:.3}");
        assert!(s > 0.9, "{name}: similarity {s}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
