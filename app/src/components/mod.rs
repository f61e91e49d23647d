//! Shared UI pieces: the site header, form fields, form state.

pub mod field;
/// Used by the pages of this crate only.
pub(crate) mod form;
pub mod header;
pub mod on_demand;
pub mod providers;
