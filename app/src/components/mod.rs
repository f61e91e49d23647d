pub mod field;
pub mod header;
