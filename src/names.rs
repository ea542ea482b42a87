//! Choices an experiment file spells as names (`optimizer = "adamw"`), as enums.
//!
//! [`named!`](crate::named) declares an enum together with its names, so that a name is
//! written once: the list a setting accepts ([`Named::NAMES`]), parsing (which fails on
//! anything else, never falls back to a default), writing, and serde (as the same names).

/// An enum whose variants are spelled as names in files.
pub trait Named: Sized + Copy + 'static {
    /// Every variant, in declaration order.
    const ALL: &'static [Self];
    /// Their names, in the same order.
    const NAMES: &'static [&'static str];

    /// The variant of a name; `None` for any other text.
    fn from_name(name: &str) -> Option<Self> {
        let i = Self::NAMES.iter().position(|n| *n == name)?;
        Some(Self::ALL[i])
    }

    /// The variant's name.
    fn name(self) -> &'static str;
}

/// Declares an enum of named variants: `named! { /// doc  pub enum E { /// doc  A = "a", ... } }`.
#[macro_export]
macro_rules! named {
    ($(#[$meta:meta])* $vis:vis enum $Enum:ident {
        $($(#[$vmeta:meta])* $Variant:ident = $name:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $Enum {
            $($(#[$vmeta])* $Variant),+
        }

        impl $Enum {
            /// The name files spell this variant with.
            #[allow(dead_code)]
            pub fn name(self) -> &'static str {
                match self {
                    $($Enum::$Variant => $name),+
                }
            }

            /// The variant a name spells; `None` for any other text.
            #[allow(dead_code)]
            pub fn from_name(name: &str) -> Option<Self> {
                <Self as $crate::names::Named>::from_name(name)
            }
        }

        impl $crate::names::Named for $Enum {
            const ALL: &'static [Self] = &[$($Enum::$Variant),+];
            const NAMES: &'static [&'static str] = &[$($name),+];

            fn name(self) -> &'static str {
                $Enum::name(self)
            }
        }

        impl std::fmt::Display for $Enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::names::Named::name(*self))
            }
        }

        impl serde::Serialize for $Enum {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::names::Named::name(*self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $Enum {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                <$Enum as $crate::names::Named>::from_name(&name).ok_or_else(|| {
                    serde::de::Error::unknown_variant(
                        &name,
                        <$Enum as $crate::names::Named>::NAMES,
                    )
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::Named;

    crate::named! {
        /// A test enum.
        enum Colour {
            /// Red.
            Red = "red",
            /// Dark blue.
            DarkBlue = "dark_blue",
        }
    }

    #[test]
    fn names_parse_write_and_round_trip_through_serde() {
        assert_eq!(Colour::NAMES, &["red", "dark_blue"]);
        assert_eq!(Colour::from_name("dark_blue"), Some(Colour::DarkBlue));
        assert_eq!(Colour::from_name("blue"), None, "no silent default");
        assert_eq!(Colour::Red.to_string(), "red");
        let json = serde_json::to_string(&Colour::DarkBlue).unwrap();
        assert_eq!(json, "\"dark_blue\"");
        assert_eq!(
            serde_json::from_str::<Colour>(&json).unwrap(),
            Colour::DarkBlue
        );
        let e = serde_json::from_str::<Colour>("\"blue\"").unwrap_err();
        assert!(e.to_string().contains("dark_blue"), "{e}");
    }
}
