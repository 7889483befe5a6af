//! `msms`: the command-line front end of msms-shards. All logic lives in the library.

fn main() {
    msms_shards::run::tune_allocator();
    std::process::exit(msms_shards::cli::run(std::env::args_os()));
}
