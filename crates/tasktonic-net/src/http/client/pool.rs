//! The client tonic: per origin, a queue of requests and a pool of keep-alive connections,
//! one request at a time on each; timeouts, retries, and exactly one result per request.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use http::Uri;
use tasktonic_core::{Ctx, Handle, Timer, TimerEvent, TimerId, Tonic};

use super::protocol::{CWire, ClientProtocol, ClientWire, OutRequest};
use super::{HttpClient, HttpClientEvents, HttpRequest, HttpResult, RequestId};
use crate::tcp::{CloseReason, Conn, ConnId, TcpClient, TcpEvents};
#[cfg(feature = "tls")]
use crate::transport::{Tls, TlsConnector};

/// Scheme, host and port: connections are shared within one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

impl Origin {
    fn of(uri: &Uri) -> Origin {
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().unwrap_or_default();
        // An IPv6 literal comes bracketed.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Origin {
            https,
            port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
            host,
        }
    }

    /// The `Host` field's value.
    fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

struct Slot {
    conn: Conn<ClientWire>,
    up: bool,
    busy: Option<RequestId>,
    served: u32,
}

#[derive(Default)]
struct OriginState {
    /// The origin's addresses, the next to dial first; `None`: to be resolved.
    addrs: Option<Vec<SocketAddr>>,
    /// Addresses that refused a connect in a row (the next ones are tried before anything
    /// fails).
    failed_addrs: usize,
    resolving: bool,
    slots: Vec<Slot>,
    waiting: VecDeque<RequestId>,
}

struct Job {
    req: HttpRequest,
    origin: Origin,
    tries_left: u32,
    timeout: Duration,
    timer: TimerId,
    /// The connection it was sent on.
    on: Option<ConnId>,
}

/// The client tonic (an infusion of the base `B`).
pub(crate) struct Pool<B: HttpClientEvents> {
    settings: HttpClient,
    base: Handle<B>,
    origins: HashMap<Origin, OriginState>,
    jobs: HashMap<RequestId, Job>,
    origin_of: HashMap<ConnId, Origin>,
}

impl<B: HttpClientEvents> Tonic for Pool<B> {
    type State = ();

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, timer: &TimerEvent) {
        self.timed_out(ctx, RequestId(timer.marker));
    }
}

impl<B: HttpClientEvents> Pool<B> {
    pub(crate) fn new(settings: HttpClient, base: Handle<B>) -> Pool<B> {
        Pool {
            settings,
            base,
            origins: HashMap::new(),
            jobs: HashMap::new(),
            origin_of: HashMap::new(),
        }
    }

    pub(crate) fn submit(&mut self, ctx: &mut Ctx<Self>, id: RequestId, req: HttpRequest) {
        let origin = Origin::of(&req.uri);
        #[cfg(not(feature = "tls"))]
        if origin.https {
            return self.deliver(
                id,
                HttpResult::Failed("https:// needs the `tls` feature".into()),
            );
        }
        let timeout = req.timeout.unwrap_or(self.settings.timeout);
        let timer = ctx.timer(Timer::once(timeout).named("http timeout").marker(id.0));
        let tries_left = req.retries.unwrap_or(self.settings.retries);
        self.jobs.insert(
            id,
            Job {
                req,
                origin: origin.clone(),
                tries_left,
                timeout,
                timer,
                on: None,
            },
        );
        self.origins
            .entry(origin.clone())
            .or_default()
            .waiting
            .push_back(id);
        self.dispatch(ctx, &origin);
    }

    /// Send waiting requests on idle connections; open connections for the rest.
    fn dispatch(&mut self, ctx: &mut Ctx<Self>, origin: &Origin) {
        // Out of the map while it is worked on (connecting needs `self`).
        let Some(mut state) = self.origins.remove(origin) else {
            return;
        };
        self.dispatch_in(ctx, origin, &mut state);
        self.origins.insert(origin.clone(), state);
    }

    fn dispatch_in(&mut self, ctx: &mut Ctx<Self>, origin: &Origin, state: &mut OriginState) {
        if state.addrs.is_none() {
            if let Ok(ip) = origin.host.parse::<IpAddr>() {
                state.addrs = Some(vec![SocketAddr::new(ip, origin.port)]);
            } else {
                if !state.resolving && !state.waiting.is_empty() {
                    state.resolving = true;
                    self.resolve(ctx, origin.clone());
                }
                return;
            }
        }
        let addrs = state.addrs.clone().unwrap_or_default();
        while let Some(&id) = state.waiting.front() {
            let Some(job) = self.jobs.get_mut(&id) else {
                state.waiting.pop_front(); // timed out while waiting
                continue;
            };
            if let Some(slot) = state.slots.iter_mut().find(|s| s.up && s.busy.is_none()) {
                let out = OutRequest {
                    method: job.req.method.clone(),
                    uri: job.req.uri.clone(),
                    host: origin.authority(),
                    headers: job.req.headers.clone(),
                    body: job.req.body.clone(),
                };
                match slot.conn.send(ClientWire(CWire::Request(Box::new(out)))) {
                    Ok(()) => {
                        slot.busy = Some(id);
                        job.on = Some(slot.conn.id());
                        state.waiting.pop_front();
                    }
                    Err(e) => {
                        // Going down: its `on_disconnected` removes it.
                        log::debug!("{}: not usable ({e}); trying another", slot.conn.id());
                        slot.up = false;
                    }
                }
                continue;
            }
            let connecting = state.slots.iter().filter(|s| !s.up).count();
            if state.slots.len() >= self.settings.max_connections
                || connecting >= state.waiting.len()
            {
                return;
            }
            match self.connect(ctx, origin, &addrs) {
                Ok(conn) => {
                    self.origin_of.insert(conn.id(), origin.clone());
                    state.slots.push(Slot {
                        conn,
                        up: false,
                        busy: None,
                        served: 0,
                    });
                }
                Err(why) => {
                    // Nothing can reach this origin: every waiting request fails.
                    for id in state.waiting.drain(..) {
                        if let Some(job) = self.jobs.remove(&id) {
                            ctx.cancel_timer(job.timer);
                            self.deliver(id, HttpResult::Failed(why.clone()));
                        }
                    }
                    return;
                }
            }
        }
    }

    fn connect(
        &self,
        ctx: &mut Ctx<Self>,
        origin: &Origin,
        addrs: &[SocketAddr],
    ) -> Result<Conn<ClientWire>, String> {
        let addr = addrs[0];
        let protocol = ClientProtocol::new(self.settings.limits.clone());
        let mut config = self.settings.config.clone();
        // A broken response leaves no boundary to skip to: skipping would re-read the same
        // bytes forever (an oversized head is refused before anything is consumed).
        config.on_malformed = crate::tcp::OnMalformed::Close;
        let mut client = TcpClient::new(addr, protocol).config(config);
        if let Some(name) = &self.settings.selector {
            client = client.selector(name.clone());
        }
        #[cfg(feature = "tls")]
        if origin.https {
            let connector = self
                .settings
                .tls
                .clone()
                .unwrap_or_else(TlsConnector::with_web_roots);
            let tls = Tls::client(&connector, &origin.host).map_err(|e| e.to_string())?;
            client = client.tls(tls);
        }
        #[cfg(not(feature = "tls"))]
        let _ = origin;
        client
            .start(ctx)
            .map_err(|e| format!("cannot connect: {e}"))
    }

    /// Resolve the origin's host name on a short-lived thread, so that a slow lookup stalls
    /// no catalyst.
    fn resolve(&mut self, ctx: &mut Ctx<Self>, origin: Origin) {
        let me = ctx.handle();
        let spawned = std::thread::Builder::new()
            .name("http resolve".into())
            .spawn(move || {
                let result = (origin.host.as_str(), origin.port)
                    .to_socket_addrs()
                    .map(Iterator::collect::<Vec<_>>)
                    .map_err(|e| format!("cannot resolve {}: {e}", origin.host));
                let _ = me.notify_named("resolved", move |p, ctx| p.resolved(ctx, origin, result));
            });
        if let Err(e) = spawned {
            log::error!("cannot start a resolver thread: {e}");
        }
    }

    fn resolved(
        &mut self,
        ctx: &mut Ctx<Self>,
        origin: Origin,
        result: Result<Vec<SocketAddr>, String>,
    ) {
        let Some(state) = self.origins.get_mut(&origin) else {
            return;
        };
        state.resolving = false;
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                state.addrs = Some(addrs);
                self.dispatch(ctx, &origin);
            }
            other => {
                let why = other
                    .err()
                    .unwrap_or_else(|| format!("{} has no address", origin.host));
                let waiting: Vec<_> = state.waiting.drain(..).collect();
                for id in waiting {
                    if let Some(job) = self.jobs.remove(&id) {
                        ctx.cancel_timer(job.timer);
                        self.deliver(id, HttpResult::Failed(why.clone()));
                    }
                }
            }
        }
    }

    fn deliver(&self, id: RequestId, result: HttpResult) {
        if self
            .base
            .sparkle_named("http result", move |b, ctx| {
                b.on_http_result(ctx, id, result)
            })
            .is_err()
        {
            log::warn!("{id}: its tonic is gone; the result is dropped");
        }
    }

    /// A request's attempt failed: try again (`free`: a kept-alive connection closed under
    /// an idempotent request, which costs no retry), or report `why`.
    fn retry_or_fail(&mut self, ctx: &mut Ctx<Self>, id: RequestId, why: String, free: bool) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        job.on = None;
        if free || job.tries_left > 0 {
            if !free {
                job.tries_left -= 1;
            }
            log::debug!("{id}: {why}; trying again");
            let origin = job.origin.clone();
            if let Some(state) = self.origins.get_mut(&origin) {
                state.waiting.push_front(id);
            }
            return self.dispatch(ctx, &origin);
        }
        if let Some(job) = self.jobs.remove(&id) {
            ctx.cancel_timer(job.timer);
        }
        self.deliver(id, HttpResult::Failed(why));
    }

    fn timed_out(&mut self, ctx: &mut Ctx<Self>, id: RequestId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let origin = job.origin.clone();
        if let Some(conn_id) = job.on.take()
            && let Some(state) = self.origins.get_mut(&origin)
            && let Some(i) = state.slots.iter().position(|s| s.conn.id() == conn_id)
        {
            // Its response may still come: the connection cannot be reused.
            let slot = state.slots.swap_remove(i);
            slot.conn.abort();
        }
        if let Some(state) = self.origins.get_mut(&origin) {
            state.waiting.retain(|w| *w != id);
        }
        if job.tries_left > 0 {
            job.tries_left -= 1;
            log::debug!("{id}: timed out; trying again");
            job.timer = ctx.timer(Timer::once(job.timeout).named("http timeout").marker(id.0));
            if let Some(state) = self.origins.get_mut(&origin) {
                state.waiting.push_front(id);
            }
            return self.dispatch(ctx, &origin);
        }
        self.jobs.remove(&id);
        self.deliver(id, HttpResult::Timeout);
        self.dispatch(ctx, &origin);
    }

    fn slot_mut(&mut self, conn: ConnId) -> Option<(&Origin, &mut Slot)> {
        let origin = self.origin_of.get(&conn)?;
        let state = self.origins.get_mut(origin)?;
        let slot = state.slots.iter_mut().find(|s| s.conn.id() == conn)?;
        Some((origin, slot))
    }
}

impl<B: HttpClientEvents> TcpEvents<ClientWire> for Pool<B> {
    fn on_connected(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<ClientWire>, _: SocketAddr) {
        let Some((origin, slot)) = self.slot_mut(conn.id()) else {
            return;
        };
        slot.up = true;
        let origin = origin.clone();
        if let Some(state) = self.origins.get_mut(&origin) {
            state.failed_addrs = 0;
        }
        self.dispatch(ctx, &origin);
    }

    fn on_message(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<ClientWire>, msg: ClientWire) {
        let CWire::Response(response, reusable) = msg.0 else {
            return;
        };
        let Some((origin, slot)) = self.slot_mut(conn.id()) else {
            return;
        };
        let origin = origin.clone();
        let id = slot.busy.take();
        slot.served += 1;
        if !reusable {
            // The server closes after this response (it said so, or the close ended the
            // body): no request goes on it any more.
            slot.up = false;
            conn.close();
        }
        if let Some(id) = id
            && let Some(job) = self.jobs.remove(&id)
        {
            ctx.cancel_timer(job.timer);
            let response = *response;
            let result = if response.status().as_u16() >= 400 {
                HttpResult::HttpError(response)
            } else {
                HttpResult::Success(response)
            };
            self.deliver(id, result);
        }
        self.dispatch(ctx, &origin);
    }

    fn on_disconnected(
        &mut self,
        ctx: &mut Ctx<Self>,
        conn: &Conn<ClientWire>,
        why: &CloseReason,
        _unsent: Vec<ClientWire>,
    ) {
        let Some(origin) = self.origin_of.remove(&conn.id()) else {
            return;
        };
        let Some(state) = self.origins.get_mut(&origin) else {
            return;
        };
        let Some(i) = state.slots.iter().position(|s| s.conn.id() == conn.id()) else {
            return;
        };
        let slot = state.slots.swap_remove(i);
        if let Some(id) = slot.busy {
            // A kept-alive connection the server closed as we sent: not the request's fault.
            let free = slot.served > 0
                && self.jobs.get(&id).is_some_and(|j| j.req.idempotent())
                && matches!(why, CloseReason::PeerClosed | CloseReason::Io(_));
            return self.retry_or_fail(ctx, id, why.to_string(), free);
        }
        if !slot.up && slot.served == 0 && !matches!(why, CloseReason::Closed) {
            // A connect failed. Another address of the origin (IPv4 after IPv6, say) gets
            // its turn before anything fails; after all of them, the name is resolved
            // afresh next time.
            let count = state.addrs.as_ref().map_or(0, Vec::len);
            if state.failed_addrs + 1 < count {
                state.failed_addrs += 1;
                if let Some(addrs) = state.addrs.as_mut() {
                    addrs.rotate_left(1);
                }
                log::debug!("{origin:?}: {why}; trying its next address");
                return self.dispatch(ctx, &origin);
            }
            state.failed_addrs = 0;
            state.addrs = None;
            // Every waiting request has had an attempt.
            let waiting: Vec<_> = state.waiting.drain(..).collect();
            for id in waiting {
                self.retry_or_fail(ctx, id, why.to_string(), false);
            }
            return;
        }
        self.dispatch(ctx, &origin);
    }
}
