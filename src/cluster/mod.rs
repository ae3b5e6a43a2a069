pub mod apply;
pub mod manifest;
pub mod profile;
