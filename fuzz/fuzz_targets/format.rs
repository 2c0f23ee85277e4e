//! Format strings in both syntaxes; a parsed format must round-trip through AWS syntax.
#![no_main]
use flowlog::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = Format::looks_like_header(s);
    if let Ok(f) = Format::parse(s) {
        let again = Format::from_aws_syntax(&f.to_aws_syntax()).expect("a parsed format round-trips");
        assert_eq!(f, again);
        let _ = f.parse_line(s);
    }
});
