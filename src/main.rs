#![allow(dead_code)]
mod capture;
mod net;
mod tcp;

fn main() {}
