//! The router: which handler a request goes to, by method and path; 404, 405 (with
//! `Allow`) and 501 are answered by the protocol without the base being involved.

use std::any::Any;
use std::sync::Arc;

use http::Method;

/// A type-erased route handler (a [`RouteHandler<B>`](super::RouteHandler), recovered by the
/// base's side, which knows `B`).
pub(crate) type ErasedHandler = Arc<dyn Any + Send + Sync>;

#[derive(Clone)]
struct Route {
    method: Method,
    /// The path, without the `*` of a prefix pattern.
    path: String,
    prefix: bool,
    handler: ErasedHandler,
}

/// Routes by method and path: exact paths (`/hook`) and prefixes (`/static/*`), first match
/// wins. A `GET` route answers `HEAD` too (without the body).
#[derive(Clone, Default)]
pub(crate) struct Router {
    routes: Vec<Route>,
}

/// Where a request goes.
pub(crate) enum Routed {
    /// To this handler.
    To(ErasedHandler),
    /// To the base's `on_request` (no routes were given).
    Base,
    /// No route has this path.
    NotFound,
    /// Routes have this path, with these methods.
    MethodNotAllowed(String),
    /// The method is none we know.
    NotImplemented,
}

/// The methods of RFC 9110 and PATCH: any other is answered with 501 by a router.
fn known(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::CONNECT
            | Method::OPTIONS
            | Method::TRACE
            | Method::PATCH
    )
}

impl Router {
    pub(crate) fn add(&mut self, method: Method, pattern: &str, handler: ErasedHandler) {
        let (path, prefix) = match pattern.strip_suffix('*') {
            Some(p) => (p.to_string(), true),
            None => (pattern.to_string(), false),
        };
        self.routes.push(Route {
            method,
            path,
            prefix,
            handler,
        });
    }

    pub(crate) fn route(&self, method: &Method, path: &str) -> Routed {
        if self.routes.is_empty() {
            return Routed::Base;
        }
        let mut allow: Vec<&Method> = Vec::new();
        for r in &self.routes {
            let hit = if r.prefix {
                path.starts_with(&r.path)
            } else {
                path == r.path
            };
            if !hit {
                continue;
            }
            if r.method == *method || (*method == Method::HEAD && r.method == Method::GET) {
                return Routed::To(r.handler.clone());
            }
            allow.push(&r.method);
            if r.method == Method::GET {
                allow.push(&Method::HEAD);
            }
        }
        if !known(method) {
            // A method no route names, and none RFC 9110 defines: not implemented here
            // (a route may still take an extension method such as PROPFIND or PURGE).
            return Routed::NotImplemented;
        }
        if allow.is_empty() {
            return Routed::NotFound;
        }
        let mut names: Vec<&str> = allow.iter().map(|m| m.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        Routed::MethodNotAllowed(names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> ErasedHandler {
        Arc::new(0u8)
    }

    #[test]
    fn routes() {
        let mut r = Router::default();
        assert!(matches!(r.route(&Method::GET, "/"), Routed::Base));
        r.add(Method::GET, "/", h());
        r.add(Method::POST, "/hook", h());
        r.add(Method::PUT, "/hook", h());
        r.add(Method::GET, "/static/*", h());
        assert!(matches!(r.route(&Method::GET, "/"), Routed::To(_)));
        assert!(matches!(r.route(&Method::HEAD, "/"), Routed::To(_)));
        assert!(matches!(
            r.route(&Method::GET, "/static/a/b"),
            Routed::To(_)
        ));
        assert!(matches!(r.route(&Method::GET, "/nope"), Routed::NotFound));
        match r.route(&Method::DELETE, "/hook") {
            Routed::MethodNotAllowed(allow) => assert_eq!(allow, "POST, PUT"),
            _ => panic!("not a 405"),
        }
        match r.route(&Method::POST, "/") {
            Routed::MethodNotAllowed(allow) => assert_eq!(allow, "GET, HEAD"),
            _ => panic!("not a 405"),
        }
        let brew = Method::from_bytes(b"BREW").expect("a method");
        assert!(matches!(r.route(&brew, "/"), Routed::NotImplemented));
        // An extension method with a route of its own is routed.
        let purge = Method::from_bytes(b"PURGE").expect("a method");
        r.add(purge.clone(), "/cache/*", h());
        assert!(matches!(r.route(&purge, "/cache/x"), Routed::To(_)));
        assert!(matches!(r.route(&purge, "/"), Routed::NotImplemented));
    }
}
