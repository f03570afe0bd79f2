//! `tasktonic-bench`: tasktonic against raw crossbeam-channel, actix, tokio and raw mio, side
//! by side in one run (see `docs/PERFORMANCE.md`).
//!
//! ```text
//! cargo run --release -p tasktonic-bench -- all          # everything, table + RESULT lines + chart
//! cargo run --release -p tasktonic-bench -- l1 n2 …      # some workloads
//!     [--runs N] (median of N, default 3)  [--chart PATH] (default target/tasktonic-bench.svg)
//! cargo run --release -p tasktonic-bench -- sample l3 ours [N]  # one side alone (profiling)
//! tasktonic-bench serve ours_colocated & tasktonic-bench load n1 ADDR   # (profiling a server)
//! tasktonic-bench serve-tls ours DIR & tasktonic-bench load-tls ADDR DIR # (T1, TLS; see net/tls.rs)
//! tasktonic-bench serve-http ours|hyper & wrk -t1 -c64 -d5s http://ADDR/  # (H1; see net/http.rs)
//! tasktonic-bench serve-ws ours|tungstenite|tungstenite_tuned & tasktonic-bench load-ws w1|w2 ADDR # (W1, W2; net/ws.rs)
//! tasktonic-bench nats-client pub|sub|respond|request IMPL URL [N]  # (NP, NR: one NATS client; net/nats.rs)
//! tasktonic-bench soak [--conns N] [--minutes M | --seconds S]   # chaos and an account of every message (soak.rs)
//! ```

// Measurement arithmetic (rates, percentile indices, test payload bytes) truncates on purpose.
#![allow(clippy::cast_possible_truncation)]

mod local;
mod net;
mod procfs;
mod report;
mod soak;

use net::{Impl, Shape};
use report::Row;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Run `f` for each peer, `runs` times, alternating peers (A B A B) so drift hits all alike.
fn alternate<P: Copy>(
    peers: &[P],
    runs: usize,
    mut f: impl FnMut(P) -> Result<f64, String>,
) -> Result<Vec<f64>, String> {
    let mut samples = vec![Vec::new(); peers.len()];
    for _ in 0..runs {
        for (i, p) in peers.iter().enumerate() {
            samples[i].push(f(*p)?);
        }
    }
    Ok(samples.into_iter().map(median).collect())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Local {
    Ours,
    /// Ours with typed messages (`Handle::send`, `Receive`) instead of closures.
    OursTyped,
    Crossbeam,
    Actix,
    /// Actix with a window (every 1,000th message awaited), as its docs use back-pressure.
    ActixWindowed,
}

impl Local {
    fn name(self) -> &'static str {
        match self {
            Local::Ours => "ours",
            Local::OursTyped => "ours_typed",
            Local::Crossbeam => "crossbeam",
            Local::Actix => "actix",
            Local::ActixWindowed => "actix_windowed",
        }
    }

    fn parse(s: &str) -> Option<Local> {
        [
            Local::Ours,
            Local::OursTyped,
            Local::Crossbeam,
            Local::Actix,
            Local::ActixWindowed,
        ]
        .into_iter()
        .find(|l| l.name() == s)
    }

    /// One sample of `workload` (l1, l2 or l3) in this process.
    fn measure(self, workload: &str) -> Option<f64> {
        Some(match (workload, self) {
            ("l1", Local::Ours) => local::ours_tell(false, false),
            ("l1", Local::OursTyped) => local::ours_tell(false, true),
            ("l1", Local::Actix) => local::actix_tell(false),
            ("l1", Local::ActixWindowed) => local::actix_windowed_tell(false),
            ("l2", Local::Ours) => local::ours_tell(true, false),
            ("l2", Local::OursTyped) => local::ours_tell(true, true),
            ("l2", Local::Crossbeam) => local::crossbeam_tell(),
            ("l2", Local::Actix) => local::actix_tell(true),
            ("l2", Local::ActixWindowed) => local::actix_windowed_tell(true),
            ("l3", Local::Ours) => local::ours_ping_pong(false),
            ("l3", Local::OursTyped) => local::ours_ping_pong(true),
            ("l3", Local::Crossbeam) => local::crossbeam_ping_pong(),
            ("l3", Local::Actix) => local::actix_ping_pong(),
            _ => return None,
        })
    }
}

/// One sample in a fresh child process (`tasktonic-bench sample W IMPL`), so that what one
/// peer leaves behind cannot slow the next: actix's L1 mailbox grows to ~300 MB of heap that a
/// process keeps, and the implementation measured after it in the same process ran ~30% slower.
fn sample(workload: &str, which: Local) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let out = std::process::Command::new(exe)
        .args(["sample", workload, which.name()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start a {workload} sample: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .map_err(|_| format!("{workload} {}: no figure ({text:?})", which.name()))
}

/// L1–L3: `ours` and its peers, samples alternated, each in a fresh process; one ratio of
/// ours to each peer.
fn local_row(
    which: &str,
    unit: &'static str,
    higher: bool,
    peers: &[Local],
    runs: usize,
) -> Result<Row, String> {
    let medians = alternate(peers, runs, |p| sample(which, p))?;
    let mut row = Row::new(&which.to_uppercase(), unit, higher);
    for (peer, median) in peers.iter().zip(medians) {
        row.figure(peer.name(), median);
    }
    // Ours (closures) against each peer, as before; the typed form against each too.
    for peer in peers
        .iter()
        .filter(|p| !matches!(p, Local::Ours | Local::OursTyped))
    {
        row.ratio(peer.name(), "ours", peer.name());
        if peers.contains(&Local::OursTyped) {
            row.ratio(
                &format!("typed_vs_{}", peer.name()),
                "ours_typed",
                peer.name(),
            );
        }
    }
    Ok(row)
}

/// One L4 sample in a fresh process (`sample l4 ours`), as the other local workloads: what one
/// run left in the allocator (a 100 MB timer table freed, glibc's mmap threshold raised) had
/// made the next runs' figures differ from the first's.
fn timers_sample() -> Result<local::TimerFigures, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let out = std::process::Command::new(exe)
        .args(["sample", "l4", "ours"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start an l4 sample: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    local::TimerFigures::parse(text.trim()).ok_or(format!("l4: no figures ({text:?})"))
}

/// I1: an idle app's CPU and wake-ups, and a parked catalyst's wake-up latency; each sample
/// in a fresh process (`sample i1 ours`), the medians reported.
fn i1(runs: usize) -> Result<Row, String> {
    let figures = (0..runs)
        .map(|_| {
            let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
            let out = std::process::Command::new(exe)
                .args(["sample", "i1", "ours"])
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot start an i1 sample: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            local::IdleFigures::parse(text.trim()).ok_or(format!("i1: no figures ({text:?})"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut row = Row::new("I1", "us", false);
    row.figure(
        "wake_p50_us",
        median(figures.iter().map(|f| f.wake_p50_us).collect()),
    )
    .figure(
        "wake_p99_us",
        median(figures.iter().map(|f| f.wake_p99_us).collect()),
    );
    row.extra.push((
        "idle_cpu_pct".into(),
        format!("{:.4}", median(figures.iter().map(|f| f.cpu_pct).collect())),
    ));
    row.extra.push((
        "idle_wakeups_in_5s".into(),
        format!(
            "{:.0}",
            median(figures.iter().map(|f| f.wakeups as f64).collect())
        ),
    ));
    Ok(row)
}

fn l4(runs: usize) -> Result<Row, String> {
    let figures = (0..runs)
        .map(|_| timers_sample())
        .collect::<Result<Vec<_>, _>>()?;
    let mut row = Row::new("L4", "ns", false);
    row.figure("arm_ns", median(figures.iter().map(|f| f.arm_ns).collect()))
        .figure(
            "cancel_ns",
            median(figures.iter().map(|f| f.cancel_ns).collect()),
        )
        .figure(
            "fire_per_s",
            median(figures.iter().map(|f| f.fire_per_s).collect()),
        );
    row.extra.push(("live_timers".into(), "1000000".into()));
    row.extra.push((
        "fired_in_order".into(),
        figures.iter().all(|f| f.fired_in_order).to_string(),
    ));
    Ok(row)
}

fn network_row(name: &str, unit: &'static str, higher: bool, m: &[f64]) -> Row {
    let mut row = Row::new(name, unit, higher);
    for (i, which) in Impl::ALL.iter().enumerate() {
        row.figure(which.name(), m[i]);
    }
    row.ratio("colocated_mio", "ours_colocated", "mio")
        .ratio("colocated_tokio", "ours_colocated", "tokio")
        .ratio("seed_mio", "ours_seed", "mio")
        .ratio("seed_tokio", "ours_seed", "tokio")
        .ratio("colocated_tokio_naive", "ours_colocated", "tokio_naive");
    row
}

fn n_throughput(name: &str, shape: Shape, runs: usize) -> Result<Row, String> {
    let m = alternate(&Impl::ALL, runs, |which| net::throughput(which, shape))?;
    let mut row = network_row(name, "msgs_per_s", true, &m);
    let mbs: Vec<(String, String)> = Impl::ALL
        .iter()
        .zip(&m)
        .map(|(w, v)| {
            (
                format!("{}_mb_per_s", w.name()),
                format!("{:.1}", v * shape.size as f64 / 1e6),
            )
        })
        .collect();
    row.extra.extend(mbs);
    Ok(row)
}

fn n4(runs: usize) -> Result<Vec<Row>, String> {
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut p999 = Vec::new();
    let mut samples: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); Impl::ALL.len()];
    for _ in 0..runs {
        for (i, which) in Impl::ALL.iter().enumerate() {
            samples[i].push(net::latency(*which)?);
        }
    }
    for s in &samples {
        p50.push(median(s.iter().map(|t| t.0).collect()));
        p99.push(median(s.iter().map(|t| t.1).collect()));
        p999.push(median(s.iter().map(|t| t.2).collect()));
    }
    Ok(vec![
        network_row("N4", "us_p50", false, &p50),
        network_row("N4p99", "us_p99", false, &p99),
        network_row("N4p999", "us_p99_9", false, &p999),
    ])
}

fn n5() -> Result<Vec<Row>, String> {
    net::raise_fd_limit();
    let mut setup = Vec::new();
    let mut memory = Vec::new();
    let mut served = Vec::new();
    let mut idle = Vec::new();
    for which in Impl::ALL {
        let (n, ms, bytes, idle_pct, wakeups) = net::many(which, 10_000)?;
        served.push((which.name(), n));
        setup.push(ms);
        memory.push(bytes);
        idle.push((idle_pct, wakeups));
    }
    let mut mem = network_row("N5", "bytes_per_conn", false, &memory);
    for (name, n) in served {
        mem.extra
            .push((format!("{name}_connections"), format!("{n}")));
    }
    // CPU (from its threads' nanoseconds) and wake-ups while the 10,000 connections sit
    // idle for 10 s (target: under 1 % of a core).
    for (which, (pct, wakeups)) in Impl::ALL.iter().zip(&idle) {
        mem.extra.push((
            format!("{}_idle_cpu_pct", which.name()),
            format!("{pct:.4}"),
        ));
        mem.extra.push((
            format!("{}_idle_wakeups_10s", which.name()),
            format!("{wakeups}"),
        ));
    }
    Ok(vec![mem, network_row("N5setup", "ms", false, &setup)])
}

/// T1: TLS echo, 1 connection × 64 × 4 KiB, ours co-located against tokio + tokio-rustls.
fn t1(runs: usize) -> Result<Row, String> {
    use net::tls::{self, TlsImpl};
    let pki = tls::Pki::new()?;
    let mut cpu = vec![Vec::new(); TlsImpl::ALL.len()];
    let m = alternate(&TlsImpl::ALL, runs, |which| {
        let (rate, us) = tls::throughput(which, &pki)?;
        cpu[TlsImpl::ALL.iter().position(|w| *w == which).unwrap_or(0)].push(us);
        Ok(rate)
    })?;
    let mut row = Row::new("T1", "msgs_per_s", true);
    for (which, v) in TlsImpl::ALL.iter().zip(&m) {
        row.figure(which.name(), *v);
        row.extra.push((
            format!("{}_mb_per_s", which.name()),
            format!("{:.1}", v * tls::SIZE as f64 / 1e6),
        ));
    }
    // The load generator does the same TLS work as a server on the other core, so it can
    // saturate first: the servers' CPU per message separates them where msgs/s cannot.
    let cpu: Vec<f64> = cpu.into_iter().map(median).collect();
    for (which, us) in TlsImpl::ALL.iter().zip(&cpu) {
        row.extra.push((
            format!("{}_cpu_us_per_msg", which.name()),
            format!("{us:.2}"),
        ));
    }
    if cpu[0] > 0.0 {
        row.extra.push((
            "cpu_per_msg_colocated_over_tokio_rustls".into(),
            format!("{:.2}", cpu[0] / cpu[1].max(f64::MIN_POSITIVE)),
        ));
    }
    row.ratio("colocated_tokio_rustls", "ours_colocated", "tokio_rustls");
    Ok(row)
}

/// H1 (`pipelined`: H1p): requests/s of ours and hyper from wrk, with each server's CPU per
/// request; the ratios against hyper's default builder, `pipeline_flush` shown beside.
fn h1(pipelined: bool, runs: usize) -> Result<Row, String> {
    use net::http::{self, HttpImpl};
    let peers: &[HttpImpl] = if pipelined {
        &HttpImpl::ALL
    } else {
        // Without pipelining, pipeline_flush changes nothing: hyper's default alone.
        &[HttpImpl::Ours, HttpImpl::Hyper]
    };
    let mut cpu = vec![Vec::new(); peers.len()];
    let m = alternate(peers, runs, |which| {
        let f = http::run(which, pipelined)?;
        cpu[peers.iter().position(|w| *w == which).unwrap_or(0)].push(f.cpu_us_per_request);
        Ok(f.requests_per_s)
    })?;
    let mut row = Row::new(if pipelined { "H1p" } else { "H1" }, "req_per_s", true);
    for (which, v) in peers.iter().zip(&m) {
        row.figure(which.name(), *v);
    }
    let cpu: Vec<f64> = cpu.into_iter().map(median).collect();
    for (which, us) in peers.iter().zip(&cpu) {
        row.extra.push((
            format!("{}_cpu_us_per_req", which.name()),
            format!("{us:.3}"),
        ));
    }
    row.extra.push((
        "cpu_per_req_ours_over_hyper".into(),
        format!("{:.2}", cpu[0] / cpu[1].max(f64::MIN_POSITIVE)),
    ));
    if pipelined {
        // The stronger peer for pipelined load: the one H1p's claims rest on.
        row.extra.push((
            "cpu_per_req_ours_over_hyper_pipeline_flush".into(),
            format!("{:.2}", cpu[0] / cpu[2].max(f64::MIN_POSITIVE)),
        ));
    }
    row.ratio("ours_hyper", "ours_colocated", "hyper");
    if pipelined {
        row.ratio(
            "ours_hyper_pipeline_flush",
            "ours_colocated",
            "hyper_pipeline_flush",
        );
    }
    Ok(row)
}

/// W1: WebSocket echo, 1 connection × 64 × 64 B binary, ours co-located against
/// tokio-tungstenite (its example, and tuned: feed-then-flush, 4 KiB read buffer); msgs/s
/// and each server's CPU per message. Ratios against each form, and against the faster of
/// the two (`best_tungstenite`).
fn w1(runs: usize) -> Result<Row, String> {
    use net::ws::{self, WsImpl};
    let peers = WsImpl::ALL;
    let mut cpu = vec![Vec::new(); peers.len()];
    let m = alternate(&peers, runs, |which| {
        let f = ws::w1(which)?;
        eprintln!(
            "  w1 {}: {:.0} msgs/s, {:.3} µs CPU/msg",
            which.name(),
            f.msgs_per_s,
            f.cpu_us_per_msg
        );
        cpu[peers.iter().position(|w| *w == which).unwrap_or(0)].push(f.cpu_us_per_msg);
        Ok(f.msgs_per_s)
    })?;
    let mut row = Row::new("W1", "msgs_per_s", true);
    for (which, v) in peers.iter().zip(&m) {
        row.figure(which.name(), *v);
    }
    let cpu: Vec<f64> = cpu.into_iter().map(median).collect();
    for (which, us) in peers.iter().zip(&cpu) {
        row.extra.push((
            format!("{}_cpu_us_per_msg", which.name()),
            format!("{us:.3}"),
        ));
    }
    // The faster tokio-tungstenite form is the one the claim rests on.
    let best = if m[2] > m[1] { 2 } else { 1 };
    row.extra.push((
        "cpu_per_msg_ours_over_best_tungstenite".into(),
        format!("{:.2}", cpu[0] / cpu[best].max(f64::MIN_POSITIVE)),
    ));
    row.extra
        .push(("best_tungstenite".into(), peers[best].name().into()));
    row.ratio("ours_tungstenite", "ours_colocated", "tungstenite")
        .ratio(
            "ours_tungstenite_tuned",
            "ours_colocated",
            "tungstenite_tuned",
        )
        .ratio(
            "ours_best_tungstenite",
            "ours_colocated",
            peers[best].name(),
        );
    Ok(row)
}

/// W2: 10,000 idle WebSocket sessions; the server's memory per session (RSS), ours
/// against tokio-tungstenite (the example's server, with its default 128 KiB read buffer, and
/// tuned, with a 4 KiB one), with every handshake counted.
fn w2(runs: usize) -> Result<Row, String> {
    use net::ws::{self, WsImpl};
    let peers = WsImpl::ALL;
    let mut counts = vec![(usize::MAX, usize::MAX); peers.len()];
    let mut open_ms = vec![Vec::new(); peers.len()];
    let m = alternate(&peers, runs, |which| {
        let f = ws::w2(which)?;
        eprintln!(
            "  w2 {}: {:.0} bytes/session, {} of {} handshakes, {} open after, {:.0} ms to open",
            which.name(),
            f.bytes_per_session,
            f.handshakes,
            ws::SESSIONS,
            f.open_after,
            f.open_ms
        );
        let i = peers.iter().position(|w| *w == which).unwrap_or(0);
        // The worst sample's counts are the ones reported.
        counts[i] = (counts[i].0.min(f.handshakes), counts[i].1.min(f.open_after));
        open_ms[i].push(f.open_ms);
        Ok(f.bytes_per_session)
    })?;
    let mut row = Row::new("W2", "bytes_per_session", false);
    for (which, v) in peers.iter().zip(&m) {
        row.figure(which.name(), *v);
    }
    for (i, which) in peers.iter().enumerate() {
        row.extra.push((
            format!("{}_handshakes", which.name()),
            counts[i].0.to_string(),
        ));
        row.extra.push((
            format!("{}_open_after", which.name()),
            counts[i].1.to_string(),
        ));
        row.extra.push((
            format!("{}_open_ms", which.name()),
            format!("{:.0}", median(open_ms[i].clone())),
        ));
    }
    row.extra
        .push(("sessions".into(), ws::SESSIONS.to_string()));
    row.ratio("ours_tungstenite", "ours_colocated", "tungstenite")
        .ratio(
            "ours_tungstenite_tuned",
            "ours_colocated",
            "tungstenite_tuned",
        );
    Ok(row)
}

/// The throughput workloads' shapes.
fn shape(which: &str) -> Option<(&'static str, Shape)> {
    let (name, conns, window, size, per_conn) = match which {
        "n1" => ("N1", 1, 64, 64, 300_000),
        "n2" => ("N2", 1, 64, 4096, 100_000),
        "n3" => ("N3", 64, 16, 64, 10_000),
        _ => return None,
    };
    let shape = Shape {
        conns,
        window,
        size,
        per_conn,
    };
    Some((name, shape))
}

fn run(which: &str, runs: usize) -> Result<Vec<Row>, String> {
    use Local::{Actix, ActixWindowed, Crossbeam, Ours, OursTyped};
    let one = |r: Result<Row, String>| r.map(|r| vec![r]);
    match which {
        "l1" => one(local_row(
            "l1",
            "msgs_per_s",
            true,
            &[Ours, OursTyped, Actix, ActixWindowed],
            runs,
        )),
        "l2" => one(local_row(
            "l2",
            "msgs_per_s",
            true,
            &[Ours, OursTyped, Crossbeam, Actix, ActixWindowed],
            runs,
        )),
        "l3" => one(local_row(
            "l3",
            "ns_per_rt",
            false,
            &[Ours, OursTyped, Crossbeam, Actix],
            runs,
        )),
        "l4" => one(l4(runs)),
        "i1" => one(i1(runs)),
        "n1" | "n2" | "n3" => {
            let (name, shape) = shape(which).ok_or("a throughput workload")?;
            one(n_throughput(name, shape, runs))
        }
        "n4" => n4(runs),
        "n5" => n5(),
        "t1" => one(t1(runs)),
        "h1" => one(h1(false, runs)),
        "h1p" => one(h1(true, runs)),
        "w1" => one(w1(runs)),
        "w2" => one(w2(runs)),
        "np" | "nr" | "q1" => net::nats::rows(which, runs),
        other => Err(format!(
            "unknown workload {other:?} (all, l1..l4, n1..n5, t1, h1, h1p, w1, w2, np, nr, q1)"
        )),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("soak") {
        std::process::exit(soak::main(&args[1..]));
    }
    if args.first().map(String::as_str) == Some("serve") {
        let which = args.get(1).and_then(|s| Impl::parse(s));
        let Some(which) = which else {
            eprintln!(
                "usage: tasktonic-bench serve ours_colocated|ours_seed|mio|tokio|tokio_naive"
            );
            std::process::exit(2);
        };
        net::raise_fd_limit();
        net::serve(which, "127.0.0.1:0".parse().expect("an address"));
        return;
    }
    if args.first().map(String::as_str) == Some("serve-tls") {
        let which = args.get(1).and_then(|s| net::tls::TlsImpl::parse(s));
        let (Some(which), Some(dir)) = (which, args.get(2)) else {
            eprintln!("usage: tasktonic-bench serve-tls ours|tokio DIR (cert.pem, key.pem)");
            std::process::exit(2);
        };
        net::tls::serve(which, std::path::Path::new(dir));
        return;
    }
    if args.first().map(String::as_str) == Some("serve-http") {
        let Some(which) = args.get(1).and_then(|s| net::http::HttpImpl::parse(s)) else {
            eprintln!("usage: tasktonic-bench serve-http ours|hyper|hyper_pipeline_flush");
            std::process::exit(2);
        };
        net::http::serve(which);
        return;
    }
    if args.first().map(String::as_str) == Some("nats-client") {
        net::nats::client_main(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some("serve-ws") {
        let Some(which) = args.get(1).and_then(|s| net::ws::WsImpl::parse(s)) else {
            eprintln!(
                "usage: tasktonic-bench serve-ws ours [READ_CHUNK]|tungstenite|tungstenite_tuned"
            );
            std::process::exit(2);
        };
        net::ws::serve(which, args.get(2).and_then(|n| n.parse().ok()));
        return;
    }
    if args.first().map(String::as_str) == Some("load-ws") {
        // `load-ws w1 ADDR [COUNT]`: one W1 run (msgs/s); `load-ws w2 ADDR`: open W2's
        // sessions, hold them a second, print how many handshakes succeeded (for profiling
        // a server).
        let addr: Option<std::net::SocketAddr> = args.get(2).and_then(|a| a.parse().ok());
        let count = args
            .get(3)
            .and_then(|n| n.parse().ok())
            .unwrap_or(net::ws::COUNT);
        let result = match (args.get(1).map(String::as_str), addr) {
            (Some("w1"), Some(addr)) => net::ws::load_w1(addr, count).map(|r| format!("{r:.0}")),
            (Some("w2"), Some(addr)) => {
                net::raise_fd_limit();
                net::ws::open_many(
                    addr,
                    net::ws::SESSIONS,
                    || {},
                    || {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    },
                )
                .map(|o| format!("{} handshakes, {} open after", o.handshakes, o.open_after))
            }
            _ => {
                eprintln!("usage: tasktonic-bench load-ws w1 ADDR [COUNT] | load-ws w2 ADDR");
                std::process::exit(2);
            }
        };
        match result {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("load-ws failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if args.first().map(String::as_str) == Some("load-tls") {
        let addr: Option<std::net::SocketAddr> = args.get(1).and_then(|a| a.parse().ok());
        let (Some(addr), Some(dir)) = (addr, args.get(2)) else {
            eprintln!("usage: tasktonic-bench load-tls ADDR DIR (ca.pem)");
            std::process::exit(2);
        };
        match net::tls::load(addr, std::path::Path::new(dir)) {
            Ok(rate) => println!("{rate:.0}"),
            Err(e) => {
                eprintln!("load-tls failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if args.first().map(String::as_str) == Some("chart") {
        // Re-render a saved run: `tasktonic-bench chart RESULTS.txt OUT.svg`.
        let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
            eprintln!("usage: tasktonic-bench chart SAVED_OUTPUT.txt OUT.svg");
            std::process::exit(2);
        };
        let text = std::fs::read_to_string(input).unwrap_or_default();
        let rows: Vec<Row> = text.lines().filter_map(Row::parse).collect();
        let title = "tasktonic vs peers (saved run)";
        if let Err(e) = std::fs::write(output, report::svg(&rows, title)) {
            eprintln!("cannot write {output}: {e}");
            std::process::exit(1);
        }
        println!("{} workloads charted to {output}", rows.len());
        return;
    }
    if args.first().map(String::as_str) == Some("load") {
        // `load n1|n2|n3|n4 ADDR`: drive a running server (`serve IMPL`) once: for profiling
        // it. Prints msgs/s (n1–n3) or the p50 round trip in µs of 22,000 (n4).
        let addr: Option<std::net::SocketAddr> = args.get(2).and_then(|a| a.parse().ok());
        if let (Some("n4"), Some(addr)) = (args.get(1).map(String::as_str), addr) {
            match net::latency_at(addr) {
                Ok((p50, _, _)) => println!("{p50:.1}"),
                Err(e) => {
                    eprintln!("load failed: {e}");
                    std::process::exit(1);
                }
            }
            return;
        }
        let shape = args.get(1).and_then(|w| shape(w));
        let (Some((_, shape)), Some(addr)) = (shape, addr) else {
            eprintln!("usage: tasktonic-bench load n1|n2|n3|n4 ADDR");
            std::process::exit(2);
        };
        match net::load_once(addr, shape) {
            Ok(rate) => println!("{rate:.0}"),
            Err(e) => {
                eprintln!("load failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if args.first().map(String::as_str) == Some("sample") {
        // `sample l1|l2|l3 ours|crossbeam|actix [N]`: N samples in this process, one per line
        // (what the local workloads run in a child; alone, it is the thing to profile).
        // `sample l4 ours [N]`: arm ns, cancel ns, fired/s and the order check, per line.
        let which = args.get(2).and_then(|s| Local::parse(s));
        let workload = args.get(1).map(String::as_str).unwrap_or("");
        let times = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1);
        if workload == "l4" && matches!(which, Some(Local::Ours)) {
            for _ in 0..times {
                println!("{}", local::ours_timers().line());
            }
            return;
        }
        if workload == "i1" && matches!(which, Some(Local::Ours)) {
            for _ in 0..times {
                println!("{}", local::ours_idle().line());
            }
            return;
        }
        for _ in 0..times {
            match which.and_then(|w| w.measure(workload)) {
                Some(figure) => println!("{figure:.0}"),
                None => {
                    eprintln!(
                        "usage: tasktonic-bench sample l1|l2|l3 ours|crossbeam|actix [N] | sample l4 ours [N]"
                    );
                    std::process::exit(2);
                }
            }
        }
        return;
    }
    let mut runs = 3;
    let mut chart = "target/tasktonic-bench.svg".to_string();
    let mut workloads = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().and_then(|n| n.parse().ok()).unwrap_or(3).max(1),
            "--chart" => chart = it.next().unwrap_or(chart),
            "all" => workloads.extend(
                [
                    "l1", "l2", "l3", "l4", "i1", "n1", "n2", "n3", "n4", "n5", "t1", "h1", "h1p",
                    "w1", "w2", "np", "nr",
                ]
                .map(String::from),
            ),
            w => workloads.push(w.to_lowercase()),
        }
    }
    if workloads.is_empty() {
        eprintln!(
            "usage: tasktonic-bench all | l1 l2 l3 l4 i1 n1 n2 n3 n4 n5 t1 h1 h1p w1 w2 np nr [--runs N] [--chart PATH]"
        );
        std::process::exit(2);
    }
    let mut rows = Vec::new();
    for w in &workloads {
        eprintln!("running {w} ({runs} runs)…");
        match run(w, runs) {
            Ok(mut r) => {
                for row in &r {
                    println!("{}", row.result_line());
                }
                rows.append(&mut r);
            }
            Err(e) => {
                eprintln!("{w} failed: {e}");
                std::process::exit(1);
            }
        }
    }
    println!("\n{}", report::table(&rows));
    let title = format!("tasktonic vs peers, median of {runs} runs");
    match std::fs::write(&chart, report::svg(&rows, &title)) {
        Ok(()) => println!("chart: {chart}"),
        Err(e) => eprintln!("cannot write the chart to {chart}: {e}"),
    }
}
