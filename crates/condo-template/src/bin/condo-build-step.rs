//! Runs one template build step: `condo-build-step ROOT ID BUNDLE` creates the container of
//! BUNDLE through the runtime library, waits for it, deletes it and exits with its status.
//! The builder starts it so the container is created from a single-threaded process.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: condo-build-step ROOT ID BUNDLE");
        std::process::exit(2);
    }
    let opts = condo_runtime::create::CreateOptions {
        root: args[1].clone().into(),
        id: args[2].clone(),
        bundle: args[3].clone().into(),
        ..Default::default()
    };
    match condo_runtime::run::run(&opts, false) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("condo-build-step: {e}");
            std::process::exit(125);
        }
    }
}
