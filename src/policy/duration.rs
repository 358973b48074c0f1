//! Policy durations: `90d`, `24h`, `30m`, `45s`, `2w`, or sums like `1d12h`.

use chrono::TimeDelta;
use serde::de::{self, Deserialize, Deserializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub TimeDelta);

impl Dur {
    /// The longest duration a policy may give: 100 years.
    pub const LONGEST: TimeDelta = TimeDelta::days(36_500);

    pub fn parse(text: &str) -> Result<Dur, String> {
        let bad = || {
            format!("invalid duration `{text}`: expected a number and a unit (s, m, h, d, w), e.g. `90d` or `1d12h`")
        };
        let mut total = TimeDelta::zero();
        let mut digits = String::new();
        let mut saw_unit = false;
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let n: i64 = digits.parse().map_err(|_| bad())?;
            let unit = match c {
                's' => TimeDelta::try_seconds(n),
                'm' => TimeDelta::try_minutes(n),
                'h' => TimeDelta::try_hours(n),
                'd' => TimeDelta::try_days(n),
                'w' => TimeDelta::try_weeks(n),
                _ => None,
            }
            .ok_or_else(bad)?;
            total = total.checked_add(&unit).ok_or_else(bad)?;
            digits.clear();
            saw_unit = true;
        }
        if !digits.is_empty() || !saw_unit {
            return Err(bad());
        }
        // Every date the tool computes is `now + duration`: a bound here keeps
        // that arithmetic far from chrono's limits (and no token lives longer).
        if total > Dur::LONGEST {
            return Err(format!("duration `{text}` is longer than 100 years: use at most `36500d`"));
        }
        Ok(Dur(total))
    }

    /// Short human form, largest units first: `90d`, `1d12h`, `0s`.
    pub fn human(delta: TimeDelta) -> String {
        let mut secs = delta.num_seconds().abs();
        let sign = if delta < TimeDelta::zero() { "-" } else { "" };
        if secs == 0 {
            return "0s".into();
        }
        let mut out = String::from(sign);
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if secs >= size {
                out.push_str(&format!("{}{unit}", secs / size));
                secs %= size;
                if out.len() > 6 {
                    break; // two units are enough for a human
                }
            }
        }
        out
    }
}

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^\\s*([0-9]+[smhdw])+\\s*$",
            "description": "A number and a unit (s, m, h, d, w), or a sum like 1d12h; at most 100 years",
            "examples": ["90d", "24h", "1d12h"],
        })
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Dur::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(Dur::parse("90d").unwrap().0, TimeDelta::days(90));
        assert_eq!(Dur::parse("24h").unwrap().0, TimeDelta::hours(24));
        assert_eq!(Dur::parse("1d12h").unwrap().0, TimeDelta::hours(36));
        assert_eq!(Dur::parse("2w").unwrap().0, TimeDelta::days(14));
        assert_eq!(Dur::parse("0s").unwrap().0, TimeDelta::zero());
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "90", "d", "9x", "1.5d", "-3d", "99999999999999999999d", "100000000d", "36501d"] {
            assert!(Dur::parse(bad).is_err(), "{bad} should fail");
        }
        assert_eq!(Dur::parse("36500d").unwrap().0, Dur::LONGEST);
    }

    #[test]
    fn prints_short() {
        assert_eq!(Dur::human(TimeDelta::days(90)), "90d");
        assert_eq!(Dur::human(TimeDelta::hours(36)), "1d12h");
        assert_eq!(Dur::human(-TimeDelta::minutes(5)), "-5m");
    }
}
