//! A chat server and three scripted clients in one process, talking MessagePack.
//!
//! alice, bob and carol join and talk. Bob asks to be kicked: the server closes his
//! connection, and his client — with a reconnect policy — comes back on its own, joins again
//! and says so. Each client leaves when its script is done; then the server stops, and the
//! program exits 0.
//!
//! Run: `cargo run --example chat`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasktonic::net::codec::MsgPack;
use tasktonic::net::tcp::Reconnect;
use tasktonic::net::{CloseReason, Conn, ConnId, TcpClient, TcpEvents, TcpSendError, TcpServer};
use tasktonic::prelude::*;

/// Everything on the wire, both ways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Chat {
    Join { name: String },
    Say { from: String, text: String },
    Welcome { members: Vec<String> },
    Left { name: String },
}

type Codec = MsgPack<Chat>;

// ----- the server -----------------------------------------------------------------------------

#[derive(Default)]
struct ChatServer {
    members: BTreeMap<ConnId, (String, Conn<Chat>)>,
}

impl ChatServer {
    fn broadcast(&self, except: ConnId, msg: &Chat) {
        for (id, (_, conn)) in &self.members {
            if *id == except {
                continue;
            }
            match conn.send(msg.clone()) {
                // Leaving right now: its `Left` follows.
                Ok(()) | Err(TcpSendError::Closed(_)) => {}
                Err(e) => log::warn!("chat: not delivered to {id}: {e}"),
            }
        }
    }
}

impl Tonic for ChatServer {
    type State = ();
}

impl TcpEvents<Chat> for ChatServer {
    fn on_message(&mut self, _ctx: &mut Ctx<Self>, conn: &Conn<Chat>, msg: Chat) {
        match msg {
            Chat::Join { name } => {
                let members = self.members.values().map(|(n, _)| n.clone()).collect();
                conn.send(Chat::Welcome { members }).ok();
                self.broadcast(conn.id(), &Chat::Join { name: name.clone() });
                self.members.insert(conn.id(), (name, conn.clone()));
            }
            Chat::Say { text, .. } if text == "/kick" => {
                println!(
                    "[server] kicking {}",
                    self.members.get(&conn.id()).map_or("?", |(n, _)| n)
                );
                conn.close();
            }
            Chat::Say { text, .. } => {
                // The server knows who is talking; it does not trust `from`.
                let from = self
                    .members
                    .get(&conn.id())
                    .map_or("?".into(), |(n, _)| n.clone());
                self.broadcast(conn.id(), &Chat::Say { from, text });
            }
            other => log::warn!("chat: unexpected {other:?} from {}", conn.id()),
        }
    }

    fn on_disconnected(
        &mut self,
        _ctx: &mut Ctx<Self>,
        conn: &Conn<Chat>,
        _why: &CloseReason,
        _unsent: Vec<Chat>,
    ) {
        if let Some((name, _)) = self.members.remove(&conn.id()) {
            self.broadcast(conn.id(), &Chat::Left { name });
        }
    }
}

// ----- a scripted client ----------------------------------------------------------------------

struct ChatClient {
    name: &'static str,
    server: SocketAddr,
    /// (after, line): said in order, `after` the previous line.
    script: Vec<(u64, &'static str)>,
    next: usize,
    conn: Option<Conn<Chat>>,
    joins: u32,
}

impl ChatClient {
    fn new(name: &'static str, server: SocketAddr, script: Vec<(u64, &'static str)>) -> ChatClient {
        ChatClient {
            name,
            server,
            script,
            next: 0,
            conn: None,
            joins: 0,
        }
    }

    fn say(&self, text: &str) {
        if let Some(conn) = &self.conn {
            let msg = Chat::Say {
                from: self.name.into(),
                text: text.into(),
            };
            if let Err(e) = conn.send(msg) {
                println!("[{}] could not say {text:?}: {e}", self.name);
            }
        }
    }

    fn arm_next(&self, ctx: &mut Ctx<Self>) {
        let after = self.script.get(self.next).map_or(300, |(after, _)| *after);
        ctx.timer(Timer::once(Duration::from_millis(after)).named("script"));
    }
}

impl Tonic for ChatClient {
    type State = ();

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let conn = TcpClient::new(self.server, Codec::new())
            .reconnect(Reconnect::fixed(Duration::from_millis(100)))
            .resend(true)
            .start(ctx);
        match conn {
            Ok(conn) => self.conn = Some(conn),
            Err(e) => {
                println!("[{}] cannot start: {e}", self.name);
                ctx.finish();
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Self>, _timer: &TimerEvent) {
        match self.script.get(self.next) {
            Some((_, line)) => {
                self.say(line);
                self.next += 1;
                self.arm_next(ctx);
            }
            None => {
                println!("[{}] leaving", self.name);
                if let Some(conn) = &self.conn {
                    conn.close();
                }
                ctx.finish();
            }
        }
    }
}

impl TcpEvents<Chat> for ChatClient {
    fn on_connected(&mut self, ctx: &mut Ctx<Self>, conn: &Conn<Chat>, _peer: SocketAddr) {
        self.joins += 1;
        conn.send(Chat::Join {
            name: self.name.into(),
        })
        .ok();
        if self.joins == 1 {
            self.arm_next(ctx);
        } else {
            self.say("I'm back (reconnected by my policy)");
        }
    }

    fn on_message(&mut self, _ctx: &mut Ctx<Self>, _conn: &Conn<Chat>, msg: Chat) {
        match msg {
            Chat::Welcome { members } => {
                println!("[{}] welcome; here already: {members:?}", self.name)
            }
            Chat::Join { name } => println!("[{}] {name} joined", self.name),
            Chat::Say { from, text } => println!("[{}] {from}: {text}", self.name),
            Chat::Left { name } => println!("[{}] {name} left", self.name),
        }
    }

    fn on_disconnected(
        &mut self,
        _ctx: &mut Ctx<Self>,
        _conn: &Conn<Chat>,
        why: &CloseReason,
        unsent: Vec<Chat>,
    ) {
        println!(
            "[{}] disconnected: {why} ({} unsent)",
            self.name,
            unsent.len()
        );
    }
}

// ----- the show -------------------------------------------------------------------------------

/// Starts the server, then the clients on their own catalyst; stops when all clients left.
#[derive(Default)]
struct Show {
    clients: usize,
}

impl Tonic for Show {
    type State = ();

    fn on_start(&mut self, ctx: &mut Ctx<Self>) {
        let server = ctx
            .infusion(ChatServer::default())
            .name("chat server")
            .spawn()
            .expect("a free name");
        // Bind in the server tonic, hand the address back to start the clients.
        let me = ctx.handle();
        server
            .sparkle(move |_s, sctx| {
                let addr = "127.0.0.1:0".parse().expect("an address");
                let listening = TcpServer::bind(addr, Codec::new())
                    .start(sctx)
                    .expect("bound");
                println!("[server] listening on {}", listening.local_addr());
                let addr = listening.local_addr();
                me.sparkle(move |show, ctx| show.start_clients(ctx, addr))
                    .ok();
            })
            .ok();
    }

    fn on_infusion_completed(&mut self, ctx: &mut Ctx<Self>, infusion: &TonicRef) {
        if infusion.name() == "chat server" {
            return;
        }
        self.clients -= 1;
        if self.clients == 0 {
            println!("[show] everyone left; stopping the server");
            ctx.finish(); // finishes the server, which closes its listener
        }
    }
}

impl Show {
    fn start_clients(&mut self, ctx: &mut Ctx<Self>, addr: SocketAddr) {
        let scripts = [
            ChatClient::new(
                "alice",
                addr,
                vec![(50, "hi all"), (500, "welcome back, bob"), (300, "bye")],
            ),
            ChatClient::new("bob", addr, vec![(100, "hello"), (100, "/kick")]),
            ChatClient::new("carol", addr, vec![(150, "hey"), (700, "bye")]),
        ];
        for client in scripts {
            let name = client.name;
            ctx.infusion(client)
                .name(name)
                .catalyst("clients")
                .spawn()
                .expect("a free name");
            self.clients += 1;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    App::new("chat")
        .tonic_named("show", Show::default())
        .run()?;
    println!("done");
    Ok(())
}
