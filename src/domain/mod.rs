//! Plain types and validation rules of Cairn's data model (Apollo's model). No I/O, no async,
//! no imports from any other Cairn layer.

pub mod diff;
pub mod error;
pub mod format;
pub mod model;
pub mod names;
pub mod net;
pub mod passwords;
pub mod properties;
pub mod release_key;
pub mod time;

pub use error::DomainError;
pub use format::Format;
