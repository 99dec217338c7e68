fn main() -> std::process::ExitCode {
    mmrelay::cli::main()
}
