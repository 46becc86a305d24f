//! headstart-provision
