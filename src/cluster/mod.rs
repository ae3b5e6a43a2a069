pub mod apply;
pub mod deploy;
pub mod identity;
pub mod manifest;
pub mod profile;
pub mod render;
pub mod secrets;
pub mod status;
