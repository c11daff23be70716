//! The hidden `--generate KIND` option of mkfs.logfs, fsck.logfs and logfs-fuse: print the
//! tool's man page (`man`) or a shell completion script (`complete-bash`, `complete-zsh`,
//! `complete-fish`) and exit 0, as `rg --generate man` does.
//!
//! One file shared by the three binaries, which include it with `#[path]` (as fsck shares
//! mkfs's `build.rs`): no library gains clap, and logfs stays `no_std`.
//!
//! The man page (section 8) is clap_mangen's NAME, SYNOPSIS, DESCRIPTION (`long_about`) and
//! OPTIONS, followed by the sections of the command's `after_long_help`, which `--help` prints
//! too. That text follows a small convention, so that it reads well in both:
//!
//! * a line in capitals, not indented, starts a section (`EXIT STATUS`);
//! * other lines that are not indented are paragraphs, ended by a blank line;
//! * a line indented by two spaces is a list item: `  TAG  text`, the tag ending at the first
//!   run of two or more spaces; lines indented further continue the item's text;
//! * after a blank line, lines indented by four spaces or more are shown as they are
//!   (commands in examples).

use std::ffi::OsString;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Arg, Command, Parser};
use clap_complete::Shell;

const ID: &str = "generate";
const KINDS: [&str; 4] = ["man", "complete-bash", "complete-zsh", "complete-fish"];

/// `T::try_parse()`, plus the hidden `--generate KIND`: with it (and no other argument; the
/// positional arguments `T` requires are not needed), print what KIND names to standard output
/// and exit with status 0 (1 if standard output cannot be written). Every other command line
/// parses, and fails, exactly as with `T::try_parse()`.
pub fn try_parse<T: Parser>() -> Result<T, clap::Error> {
    try_parse_from(std::env::args_os())
}

/// [`try_parse`] of the given arguments (the first is the program name).
pub fn try_parse_from<T: Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<T, clap::Error> {
    let mut matches = with_generate(T::command()).try_get_matches_from(args)?;
    if let Some(kind) = matches.remove_one::<String>(ID) {
        let mut out = io::stdout().lock();
        match generate(T::command(), &kind, &mut out).and_then(|()| out.flush()) {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("{}: --generate {kind}: {e}", T::command().get_name());
                std::process::exit(1);
            }
        }
    }
    T::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut T::command()))
}

/// `cmd` with the hidden `--generate KIND`, which excludes every other argument (and so lifts
/// the requirement of the required ones).
fn with_generate(cmd: Command) -> Command {
    cmd.arg(
        Arg::new(ID)
            .long(ID)
            .value_name("KIND")
            .value_parser(KINDS)
            .exclusive(true)
            .hide(true),
    )
}

/// Write what `kind` (one of [`KINDS`]) names for `cmd`.
pub fn generate(mut cmd: Command, kind: &str, out: &mut dyn Write) -> io::Result<()> {
    let shell = match kind {
        "man" => return man(cmd, out),
        "complete-bash" => Shell::Bash,
        "complete-zsh" => Shell::Zsh,
        "complete-fish" => Shell::Fish,
        _ => return Err(io::Error::other(format!("unknown KIND {kind:?}"))),
    };
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

/// The section-8 man page of `cmd`.
fn man(cmd: Command, out: &mut dyn Write) -> io::Result<()> {
    let version = cmd.get_version().unwrap_or_default().to_string();
    let extra = cmd.get_after_long_help().map(|h| h.to_string());
    // NAME is "mkfs.logfs - make a logfs file system": lower-case the summary's first letter
    // (unless it starts an acronym).
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let mut chars = about.chars();
    let about = match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if !second.is_uppercase() => {
            format!("{}{}", first.to_lowercase(), &about[first.len_utf8()..])
        }
        _ => about,
    };
    let man = clap_mangen::Man::new(cmd.about(about))
        .section("8")
        .date(date())
        .source(format!("logfs {version}"))
        .manual("System Administration");
    // clap_mangen's sections. Each comes with roff's preamble (the lines before `.TH` in the
    // title), which defines the apostrophe string and is needed once.
    let mut title = Vec::new();
    man.render_title(&mut title)?;
    let preamble = title
        .windows(4)
        .position(|w| w == b".TH ")
        .map_or(&title[..0], |i| &title[..i]);
    out.write_all(&title)?;
    type Render = fn(&clap_mangen::Man, &mut dyn Write) -> io::Result<()>;
    let sections: [Render; 4] = [
        clap_mangen::Man::render_name_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_options_section,
    ];
    for render in sections {
        let mut buf = Vec::new();
        render(&man, &mut buf)?;
        out.write_all(buf.strip_prefix(preamble).unwrap_or(&buf))?;
    }
    if let Some(extra) = extra {
        out.write_all(after_help_sections(&extra).as_bytes())?;
    }
    Ok(())
}

/// The man page's date, YYYY-MM-DD: `$SOURCE_DATE_EPOCH` (reproducible builds) or today.
fn date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    ymd(secs / 86_400)
}

/// Days since 1970-01-01 as a date, YYYY-MM-DD (Howard Hinnant's `civil_from_days`).
fn ymd(days: u64) -> String {
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Text for a roff text line: backslashes escaped, option dashes made minus signs, and a
/// leading `.` or `'` kept from starting a request.
fn roff_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    if s.starts_with(['.', '\'']) {
        out.push_str("\\&");
    }
    let mut prev = ' ';
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' if prev == ' ' || prev == '-' || prev == '(' || prev == '[' => out.push_str("\\-"),
            _ => out.push(c),
        }
        prev = c;
    }
    out
}

/// `after_long_help` text (the convention in the module's documentation) as man(7) sections.
fn after_help_sections(text: &str) -> String {
    /// What a line is, and what the previous one was, to tell paragraphs, items and literal
    /// blocks apart.
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Blank,
        Heading,
        Para,
        Item,
        Literal,
    }
    let mut out = String::new();
    let mut prev = Kind::Blank;
    for raw in text.lines() {
        let indent = raw.len() - raw.trim_start().len();
        let body = raw.trim();
        let kind = match indent {
            _ if body.is_empty() => Kind::Blank,
            4.. if matches!(prev, Kind::Blank | Kind::Heading | Kind::Literal) => Kind::Literal,
            3.. if prev == Kind::Item => Kind::Item,
            2 => Kind::Item,
            0 if is_heading(body) => Kind::Heading,
            _ => Kind::Para,
        };
        if prev == Kind::Literal && kind != Kind::Literal {
            out.push_str(".fi\n");
        }
        match kind {
            Kind::Blank => {}
            Kind::Heading => out.push_str(&format!(".SH \"{body}\"\n")),
            Kind::Para => {
                if !matches!(prev, Kind::Para | Kind::Heading) {
                    out.push_str(".PP\n");
                }
                out.push_str(&roff_text(body));
                out.push('\n');
            }
            Kind::Item if indent == 2 => {
                let (tag, rest) = match body.find("  ") {
                    Some(i) => (&body[..i], body[i..].trim()),
                    None => (body, ""),
                };
                out.push_str(&format!(".TP\n\\fB{}\\fR\n", roff_text(tag)));
                if !rest.is_empty() {
                    out.push_str(&roff_text(rest));
                    out.push('\n');
                }
            }
            Kind::Item => {
                out.push_str(&roff_text(body));
                out.push('\n');
            }
            Kind::Literal => {
                if prev != Kind::Literal {
                    out.push_str(".IP \"\" 4\n.nf\n");
                }
                out.push_str(&roff_text(body));
                out.push('\n');
            }
        }
        // A blank line after a heading does not start a paragraph of its own.
        prev = if kind == Kind::Blank && prev == Kind::Heading {
            Kind::Heading
        } else {
            kind
        };
    }
    if prev == Kind::Literal {
        out.push_str(".fi\n");
    }
    out
}

/// A section heading: capitals and spaces only.
fn is_heading(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_uppercase() || c == ' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(ymd(0), "1970-01-01");
        assert_eq!(ymd(11_016), "2000-02-29");
        assert_eq!(ymd(20_454), "2026-01-01");
        assert_eq!(date().len(), 10);
    }

    #[test]
    fn man_sections() {
        let text = "EXIT STATUS\n  0   no errors\n  4   errors left,\n      uncorrected\n\n\
                    EXAMPLES\nCheck a device:\n\n    fsck.logfs -n /dev/sdb1\n    echo $?\n\n\
                    More text\nthat goes on.\n";
        assert_eq!(
            after_help_sections(text),
            ".SH \"EXIT STATUS\"\n.TP\n\\fB0\\fR\nno errors\n.TP\n\\fB4\\fR\nerrors left,\n\
             uncorrected\n.SH \"EXAMPLES\"\nCheck a device:\n.IP \"\" 4\n.nf\n\
             fsck.logfs \\-n /dev/sdb1\necho $?\n.fi\n.PP\nMore text\nthat goes on.\n"
        );
    }
}
