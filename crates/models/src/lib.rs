//! headstart-models
