mod caching;
mod commits;
mod errors;
mod examples;
mod locking;
mod reading;
mod running;
mod tpch;
