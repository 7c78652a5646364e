//! Static assets embedded in the binary.

use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// `GET /static/{path}`: embedded files with a long cache lifetime.
pub async fn serve(path: web::Path<String>) -> HttpResponse {
    match Assets::get(&path) {
        Some(file) => {
            let mime = if path.ends_with(".css") {
                "text/css; charset=utf-8"
            } else if path.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else if path.ends_with(".svg") {
                "image/svg+xml"
            } else {
                "application/octet-stream"
            };
            HttpResponse::Ok()
                .content_type(mime)
                .insert_header(("Cache-Control", "public, max-age=3600"))
                .body(file.data.into_owned())
        }
        None => HttpResponse::NotFound().finish(),
    }
}
