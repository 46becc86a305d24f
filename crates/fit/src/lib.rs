//! headstart-fit
