//! PostgreSQL's binary wire formats for the types `wasmgate:sql` maps, both ways.
//!
//! tokio-postgres only converts to and from Rust types it knows (and dates, decimals and
//! UUIDs only through optional crates); guests have six value kinds, so this module does the
//! conversions directly. Exact decimals and date/time values travel as text (decimal strings,
//! ISO 8601) in both directions, as documented in wit/sql.wit.

use super::value::Value;
use tokio_postgres::types::{Kind, Type};

type Result<T> = std::result::Result<T, String>;

/// Days from 1970-01-01 (Unix) to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `value` in the binary format of a parameter of type `ty`; `None` is SQL NULL.
pub fn encode(value: Value, ty: &Type) -> Result<Option<Vec<u8>>> {
    if let Kind::Domain(inner) = ty.kind() {
        return encode(value, inner);
    }
    let unfit = |value: &Value| {
        format!(
            "a {} value cannot be a {} parameter",
            value.kind(),
            ty.name()
        )
    };
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Int64(v) => integer(i128::from(v), ty)?.ok_or_else(|| unfit(&value))?,
        Value::Uint64(v) => integer(i128::from(v), ty)?.ok_or_else(|| unfit(&value))?,
        Value::Float64(v) => float(v, ty)?.ok_or_else(|| unfit(&value))?,
        Value::Blob(bytes) if *ty == Type::BYTEA => bytes,
        Value::Blob(_) => return Err(unfit(&value)),
        Value::Text(text) => match encode_text(text, ty)? {
            Ok(bytes) => bytes,
            Err(text) => return Err(unfit(&Value::Text(text))),
        },
    }))
}

fn integer(v: i128, ty: &Type) -> Result<Option<Vec<u8>>> {
    let range = || format!("{v} is out of range for {}", ty.name());
    Ok(Some(match *ty {
        Type::BOOL => match v {
            0 | 1 => vec![v as u8],
            _ => return Err(format!("{v} is not a boolean (use 0 or 1)")),
        },
        Type::INT2 => i16::try_from(v)
            .map_err(|_| range())?
            .to_be_bytes()
            .to_vec(),
        Type::INT4 => i32::try_from(v)
            .map_err(|_| range())?
            .to_be_bytes()
            .to_vec(),
        Type::INT8 => i64::try_from(v)
            .map_err(|_| range())?
            .to_be_bytes()
            .to_vec(),
        Type::OID => u32::try_from(v)
            .map_err(|_| range())?
            .to_be_bytes()
            .to_vec(),
        Type::FLOAT4 => (v as f32).to_be_bytes().to_vec(),
        Type::FLOAT8 => (v as f64).to_be_bytes().to_vec(),
        Type::NUMERIC => numeric_from_str(&v.to_string())?,
        _ if is_text(ty) => v.to_string().into_bytes(),
        _ => return Ok(None),
    }))
}

fn float(v: f64, ty: &Type) -> Result<Option<Vec<u8>>> {
    Ok(Some(match *ty {
        Type::FLOAT4 => (v as f32).to_be_bytes().to_vec(),
        Type::FLOAT8 => v.to_be_bytes().to_vec(),
        Type::NUMERIC if v.is_finite() => numeric_from_str(&v.to_string())?,
        Type::NUMERIC if v.is_nan() => numeric_from_str("NaN")?,
        Type::NUMERIC => return Err(format!("{v} cannot be a numeric")),
        _ if is_text(ty) => v.to_string().into_bytes(),
        _ => return Ok(None),
    }))
}

/// `Ok(Err(text))` hands the text back when `ty` takes no text at all.
fn encode_text(text: String, ty: &Type) -> Result<std::result::Result<Vec<u8>, String>> {
    let bad = |what: &str| format!("{text:?} is not {what}");
    Ok(Ok(match *ty {
        _ if is_text(ty) => text.into_bytes(),
        Type::JSONB => {
            let mut bytes = Vec::with_capacity(text.len() + 1);
            // jsonb's binary format is a version byte, then the JSON text.
            bytes.push(1);
            bytes.extend_from_slice(text.as_bytes());
            bytes
        }
        Type::NUMERIC => numeric_from_str(&text)?,
        Type::UUID => parse_uuid(&text).ok_or_else(|| bad("a UUID"))?.to_vec(),
        Type::DATE => {
            let days = parse_date(&text).ok_or_else(|| bad("a date (YYYY-MM-DD)"))? - PG_EPOCH_DAYS;
            i32::try_from(days)
                .map_err(|_| bad("a date in range"))?
                .to_be_bytes()
                .to_vec()
        }
        Type::TIME => parse_time(&text)
            .ok_or_else(|| bad("a time (HH:MM:SS)"))?
            .to_be_bytes()
            .to_vec(),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            // Like PostgreSQL, a zone given for a timestamp without time zone is ignored.
            let use_zone = *ty == Type::TIMESTAMPTZ;
            parse_timestamp(&text, use_zone)
                .ok_or_else(|| bad("an ISO 8601 timestamp (YYYY-MM-DDTHH:MM:SS)"))?
                .to_be_bytes()
                .to_vec()
        }
        Type::BOOL | Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => {
            let v: i64 = text.trim().parse().map_err(|_| bad("an integer"))?;
            integer(i128::from(v), ty)?.unwrap_or_default()
        }
        Type::FLOAT4 | Type::FLOAT8 => {
            let v: f64 = text.trim().parse().map_err(|_| bad("a number"))?;
            float(v, ty)?.unwrap_or_default()
        }
        _ => return Ok(Err(text)),
    }))
}

/// Types whose binary format is their UTF-8 text.
fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::UNKNOWN
            | Type::JSON
            | Type::XML
    ) || matches!(ty.kind(), Kind::Enum(_))
        || ty.name() == "citext"
}

/// The value of a column of type `ty` from its binary format; `None` is SQL NULL.
pub fn decode(raw: Option<&[u8]>, ty: &Type) -> Result<Value> {
    let Some(raw) = raw else {
        return Ok(Value::Null);
    };
    if let Kind::Domain(inner) = ty.kind() {
        return decode(Some(raw), inner);
    }
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec())
            .map(Value::Text)
            .map_err(|_| "the server sent text that is not UTF-8".to_string())
    };
    Ok(match *ty {
        Type::BOOL => Value::Int64(i64::from(fixed::<1>(raw)?[0] != 0)),
        Type::INT2 => Value::Int64(i16::from_be_bytes(fixed(raw)?).into()),
        Type::INT4 => Value::Int64(i32::from_be_bytes(fixed(raw)?).into()),
        Type::INT8 => Value::Int64(i64::from_be_bytes(fixed(raw)?)),
        Type::OID => Value::Int64(u32::from_be_bytes(fixed(raw)?).into()),
        Type::FLOAT4 => Value::Float64(f32::from_be_bytes(fixed(raw)?).into()),
        Type::FLOAT8 => Value::Float64(f64::from_be_bytes(fixed(raw)?)),
        Type::BYTEA => Value::Blob(raw.to_vec()),
        Type::JSONB => match raw.split_first() {
            Some((1, json)) => text(json)?,
            _ => return Err("unknown jsonb format version".into()),
        },
        Type::NUMERIC => Value::Text(numeric_to_string(raw)?),
        Type::UUID => Value::Text(format_uuid(&fixed::<16>(raw)?)),
        Type::DATE => Value::Text(match i32::from_be_bytes(fixed(raw)?) {
            i32::MAX => "infinity".into(),
            i32::MIN => "-infinity".into(),
            days => format_date(i64::from(days) + PG_EPOCH_DAYS),
        }),
        Type::TIME => Value::Text(format_time(i64::from_be_bytes(fixed(raw)?))),
        Type::TIMESTAMP => Value::Text(format_timestamp(i64::from_be_bytes(fixed(raw)?), "")),
        Type::TIMESTAMPTZ => Value::Text(format_timestamp(i64::from_be_bytes(fixed(raw)?), "Z")),
        _ if is_text(ty) => text(raw)?,
        _ => {
            return Err(format!(
                "type {} has no wasmgate:sql mapping; cast it in the query (e.g. column::text)",
                ty.name()
            ))
        }
    })
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N]> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes from the server, got {}", raw.len()))
}

// --- numeric: base-10000 digits with a weight (position of the first digit) and a scale ---

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

fn numeric_from_str(text: &str) -> Result<Vec<u8>> {
    let bad = || format!("{text:?} is not a decimal number");
    let s = text.trim();
    if s.eq_ignore_ascii_case("nan") {
        return Ok(numeric_bytes(0, NUMERIC_NAN, 0, &[]));
    }
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return Err(bad());
    }
    let dscale = u16::try_from(frac_part.len()).map_err(|_| bad())?;
    let int_part = int_part.trim_start_matches('0');
    let mut digits_text = "0".repeat((4 - int_part.len() % 4) % 4);
    digits_text.push_str(int_part);
    let int_groups = digits_text.len() / 4;
    digits_text.push_str(frac_part);
    digits_text.push_str(&"0".repeat((4 - frac_part.len() % 4) % 4));
    let mut digits: Vec<i16> = digits_text
        .as_bytes()
        .chunks(4)
        .map(|chunk| chunk.iter().fold(0i16, |n, b| n * 10 + i16::from(b - b'0')))
        .collect();
    let mut weight = i16::try_from(int_groups).map_err(|_| bad())? - 1;
    let leading = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..leading);
    weight -= i16::try_from(leading).map_err(|_| bad())?;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        return Ok(numeric_bytes(0, NUMERIC_POS, dscale, &[]));
    }
    let sign = if negative { NUMERIC_NEG } else { NUMERIC_POS };
    Ok(numeric_bytes(weight, sign, dscale, &digits))
}

fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + digits.len() * 2);
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for digit in digits {
        out.extend_from_slice(&digit.to_be_bytes());
    }
    out
}

fn numeric_to_string(raw: &[u8]) -> Result<String> {
    let word = |i: usize| -> Result<[u8; 2]> {
        raw.get(i..i + 2)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| "truncated numeric".to_string())
    };
    let ndigits = usize::try_from(i16::from_be_bytes(word(0)?)).map_err(|_| "bad numeric")?;
    let weight = i32::from(i16::from_be_bytes(word(2)?));
    let sign = u16::from_be_bytes(word(4)?);
    let dscale = usize::from(u16::from_be_bytes(word(6)?));
    match sign {
        NUMERIC_NAN => return Ok("NaN".into()),
        NUMERIC_PINF => return Ok("Infinity".into()),
        NUMERIC_NINF => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|k| word(8 + 2 * k).map(i16::from_be_bytes))
        .collect::<Result<Vec<_>>>()?;
    let digit = |k: i32| -> i16 {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == NUMERIC_NEG && !digits.is_empty() {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&digit(0).to_string());
        for k in 1..=weight {
            out.push_str(&format!("{:04}", digit(k)));
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut k = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(k)));
            k += 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

// --- dates and times: days and microseconds relative to 2000-01-01 ---

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn format_date(unix_days: i64) -> String {
    let (year, month, day) = civil_from_days(unix_days);
    format!("{year:04}-{month:02}-{day:02}")
}

fn format_time(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if fraction != 0 {
        out.push_str(&format!(".{fraction:06}"));
    }
    out
}

fn format_timestamp(micros: i64, zone: &str) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => format!(
            "{}T{}{zone}",
            format_date(micros.div_euclid(MICROS_PER_DAY) + PG_EPOCH_DAYS),
            format_time(micros.rem_euclid(MICROS_PER_DAY))
        ),
    }
}

/// Days since 1970-01-01 of "YYYY-MM-DD".
fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    // The day must exist: the next month's first day comes strictly after it.
    let days = days_from_civil(year, month, day);
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    (days < days_from_civil(next_year, next_month, 1)).then_some(days)
}

/// Microseconds since midnight of "HH:MM[:SS[.ffffff]]".
fn parse_time(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, ':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let (seconds, micros) = match parts.next() {
        None => (0, 0),
        Some(rest) => {
            let (whole, fraction) = rest.split_once('.').unwrap_or((rest, ""));
            if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let mut digits = fraction.to_string();
            digits.truncate(6);
            while digits.len() < 6 {
                digits.push('0');
            }
            (whole.parse::<i64>().ok()?, digits.parse::<i64>().ok()?)
        }
    };
    if hours > 24 || minutes > 59 || seconds > 60 {
        return None;
    }
    Some(((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros)
}

/// Microseconds since 2000-01-01T00:00:00 UTC of "YYYY-MM-DD[(T| )HH:MM[:SS[.f]]][Z|±HH[:MM]]".
fn parse_timestamp(text: &str, use_zone: bool) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = match text.get(10..11) {
        Some("T") | Some("t") | Some(" ") => (&text[..10], text[11..].trim()),
        _ => (text, ""),
    };
    let days = parse_date(date)? - PG_EPOCH_DAYS;
    let (time, offset_minutes) = split_zone(rest)?;
    let time = if time.is_empty() {
        0
    } else {
        parse_time(time)?
    };
    let offset = if use_zone {
        offset_minutes * 60_000_000
    } else {
        0
    };
    days.checked_mul(MICROS_PER_DAY)?
        .checked_add(time)?
        .checked_sub(offset)
}

/// Splits a zone suffix off a time: "Z", "+02", "-05:30", "+0530".
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(time) = time.strip_suffix(['Z', 'z']) {
        return Some((time.trim_end(), 0));
    }
    let Some(at) = time.rfind(['+', '-']) else {
        return Some((time, 0));
    };
    let zone = &time[at + 1..];
    let (hours, minutes) = match zone.split_once(':') {
        Some((h, m)) => (h, m),
        None if zone.len() == 4 => zone.split_at(2),
        None => (zone, "0"),
    };
    let minutes = hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?;
    let sign = if time.as_bytes()[at] == b'-' { -1 } else { 1 };
    Some((time[..at].trim_end(), sign * minutes))
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .bytes()
        .filter(|&b| b != b'-')
        .collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_round_trip(text: &str) -> String {
        numeric_to_string(&numeric_from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn numerics_keep_every_digit() {
        for (input, output) in [
            ("0", "0"),
            ("0.00", "0.00"),
            ("12345678.9", "12345678.9"),
            ("-12.50", "-12.50"),
            ("0.00001", "0.00001"),
            ("10000", "10000"),
            ("+007.0100", "7.0100"),
            ("NaN", "NaN"),
            (
                "123456789012345678901234567890.123456789",
                "123456789012345678901234567890.123456789",
            ),
        ] {
            assert_eq!(numeric_round_trip(input), output, "{input}");
        }
        assert!(numeric_from_str("1e5").is_err());
        assert!(numeric_from_str(".").is_err());
    }

    #[test]
    fn dates_round_trip_through_day_numbers() {
        assert_eq!(days_from_civil(2000, 1, 1), PG_EPOCH_DAYS);
        for days in [-800_000, -1, 0, 59, 60, 10_957, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_date(parse_date("2024-02-29").unwrap()), "2024-02-29");
        assert_eq!(parse_date("2023-02-29"), None);
    }

    #[test]
    fn timestamps_parse_with_zones() {
        let utc = parse_timestamp("2024-05-01T13:45:00Z", true).unwrap();
        assert_eq!(format_timestamp(utc, "Z"), "2024-05-01T13:45:00Z");
        let plus2 = parse_timestamp("2024-05-01 15:45:00.5+02:00", true).unwrap();
        assert_eq!(format_timestamp(plus2, "Z"), "2024-05-01T13:45:00.500000Z");
        let ignored = parse_timestamp("2024-05-01T15:45:00-05", false).unwrap();
        assert_eq!(format_timestamp(ignored, ""), "2024-05-01T15:45:00");
        assert_eq!(
            format_time(parse_time("23:59:59.000001").unwrap()),
            "23:59:59.000001"
        );
    }

    #[test]
    fn uuids_are_canonical() {
        let text = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11";
        assert_eq!(
            format_uuid(&parse_uuid(text).unwrap()),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
    }
}
