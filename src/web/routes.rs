//! Route tables: every route of the portal and the Open API is declared once, with the right
//! a caller needs to use it. Registration is built from the table, and the authorization
//! matrix test (`tests/it/authz_matrix.rs`) derives its expectations from the same table, so
//! no route can be added without saying who may call it, nor escape the matrix.

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Responder, Route};

/// Who may call a route. Object-scoped rights apply to the `{app}`/`{env}`/`{ns}` the path
/// names; the service layer enforces them, this column documents and tests them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (sign-in, first run, assets).
    Public,
    /// Any signed-in portal user / any valid Open API token.
    Authenticated,
    /// Users or consumers allowed to create apps.
    CreateApp,
    /// Masters of the app in the path.
    AppMaster,
    /// Anyone with a grant on the app in the path.
    SeeApp,
    /// Anyone who may read the namespace in the path.
    Read,
    /// Anyone who may change the namespace's draft in the path's env.
    Modify,
    /// Anyone who may publish the namespace in the path's env.
    Release,
    /// Portal admins only.
    Admin,
}

/// One route: method, path pattern, the right it needs, and its handler.
pub struct RouteSpec {
    pub method: Method,
    pub path: String,
    pub access: Access,
    route: Option<Route>,
}

impl RouteSpec {
    fn new(method: Method, path: &str, access: Access, route: Route) -> RouteSpec {
        RouteSpec { method, path: path.to_string(), access, route: Some(route) }
    }

    /// The handler, once (registration consumes it).
    pub(crate) fn take_route(&mut self) -> Option<Route> {
        self.route.take()
    }

    /// True for methods that change state.
    pub fn is_mutating(&self) -> bool {
        self.method != Method::GET && self.method != Method::HEAD
    }
}

/// A GET route.
pub fn get<F, Args>(path: &str, access: Access, handler: F) -> RouteSpec
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    RouteSpec::new(Method::GET, path, access, web::get().to(handler))
}

/// A POST route.
pub fn post<F, Args>(path: &str, access: Access, handler: F) -> RouteSpec
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    RouteSpec::new(Method::POST, path, access, web::post().to(handler))
}

/// A PUT route.
pub fn put<F, Args>(path: &str, access: Access, handler: F) -> RouteSpec
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    RouteSpec::new(Method::PUT, path, access, web::put().to(handler))
}

/// A DELETE route.
pub fn delete<F, Args>(path: &str, access: Access, handler: F) -> RouteSpec
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    RouteSpec::new(Method::DELETE, path, access, web::delete().to(handler))
}
