//! The `basalt` server's library half: the pieces of the server binary that tests drive
//! directly. The binary (`src/main.rs`) wires them to the network and the disk.

pub mod node;
