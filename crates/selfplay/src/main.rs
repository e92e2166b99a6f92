fn main() -> std::process::ExitCode {
    selfplay::cli::main()
}
