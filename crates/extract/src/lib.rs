//! headstart-extract
