pub mod account;
mod form;
pub mod home;
pub mod login;
pub mod not_found;
pub mod register;
pub mod sessions;
