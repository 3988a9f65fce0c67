//! Reading request parameters the way Apogée does, and the faults it answers with.
//!
//! Parameters are optional strings: absent, nil and empty all mean "not given" (JAXB
//! clients omit nulls, Axis clients send `xsi:nil`). The magic words `tous` / `toutes`
//! mean "no filter". A parameter that cannot be read is a
//! `technical.parameter.noncoherentinput.<param>` fault; a well-formed request that
//! matches nothing is a `technical.data.nullretrieve.<what>` fault, never an empty answer.

use conpere_connectors::xml::Element;

/// Why an operation answers with a fault instead of data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpFault {
    /// Nothing matches: `technical.data.nullretrieve.<what>`.
    NoData {
        /// The faultstring's last part (`etudiant`, `findIAA`, `recupererse`…).
        what: &'static str,
        /// The detail message, in French like Apogée's.
        message: String,
    },
    /// A parameter is missing or malformed: `technical.parameter.noncoherentinput.<param>`.
    BadInput {
        /// The parameter, without its leading underscore (`codEtu`, `annee`…).
        param: &'static str,
        /// The detail message.
        message: String,
    },
}

impl OpFault {
    /// No data.
    pub(crate) fn no_data(what: &'static str, message: impl Into<String>) -> OpFault {
        OpFault::NoData {
            what,
            message: message.into(),
        }
    }

    /// A bad parameter.
    pub(crate) fn bad_input(param: &'static str, message: impl Into<String>) -> OpFault {
        OpFault::BadInput {
            param,
            message: message.into(),
        }
    }

    /// The `faultstring`.
    pub(crate) fn faultstring(&self) -> String {
        match self {
            OpFault::NoData { what, .. } => format!("technical.data.nullretrieve.{what}"),
            OpFault::BadInput { param, .. } => {
                format!("technical.parameter.noncoherentinput.{param}")
            }
        }
    }

    /// The detail message.
    pub(crate) fn message(&self) -> &str {
        match self {
            OpFault::NoData { message, .. } | OpFault::BadInput { message, .. } => message,
        }
    }
}

/// A year parameter: one year, or every year (`toutes`, or not given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Years {
    /// Every year.
    All,
    /// One academic year (start year).
    One(i32),
}

impl Years {
    /// Whether `year` is selected.
    pub(crate) fn contains(self, year: i32) -> bool {
        match self {
            Years::All => true,
            Years::One(one) => one == year,
        }
    }
}

/// A set of state letters (`E`, `ARE`…), or every state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum States {
    /// No filter.
    All,
    /// These state codes, upper-cased.
    Only(String),
}

impl States {
    /// Whether `state` is selected.
    pub(crate) fn contains(&self, state: &str) -> bool {
        match self {
            States::All => true,
            States::Only(letters) => letters.contains(state),
        }
    }
}

/// The parameters of one request (or of one nested DTO parameter, `_seCritere`…).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params<'a> {
    element: &'a Element,
}

impl<'a> Params<'a> {
    /// The parameters held by `element` (the operation's wrapper).
    pub(crate) fn new(element: &'a Element) -> Params<'a> {
        Params { element }
    }

    /// A parameter's trimmed text; `None` when absent, nil or empty.
    pub(crate) fn text(&self, name: &str) -> Option<&'a str> {
        self.element.text_of(name)
    }

    /// The element's own trimmed text (a repeated simple parameter such as `listVersion`).
    pub(crate) fn value(&self) -> Option<&'a str> {
        self.element.value()
    }

    /// A parameter's text, `None` also for the "no filter" words `tous` / `toutes`.
    pub(crate) fn filter(&self, name: &str) -> Option<&'a str> {
        self.text(name).filter(|value| !is_all(value))
    }

    /// A structured parameter.
    pub(crate) fn nested(&self, name: &str) -> Option<Params<'a>> {
        self.element.child(name).map(Params::new)
    }

    /// A structured parameter that must be present.
    pub(crate) fn required_nested(
        &self,
        name: &str,
        param: &'static str,
    ) -> Result<Params<'a>, OpFault> {
        self.nested(name)
            .filter(|nested| !nested.element.is_nil())
            .ok_or_else(|| {
                OpFault::bad_input(param, format!("le paramètre {name} est obligatoire"))
            })
    }

    /// The repeated children `name` (`item`s of a `Tableau…`, `listVersion`s).
    pub(crate) fn repeated(&self, name: &'a str) -> impl Iterator<Item = Params<'a>> + 'a {
        self.element.children_named(name).map(Params::new)
    }

    /// The student number `_codEtu`: required, digits only (`COD_ETU` is a number).
    pub(crate) fn cod_etu(&self) -> Result<&'a str, OpFault> {
        let value = self
            .text("_codEtu")
            .ok_or_else(|| OpFault::bad_input("codEtu", "le numéro étudiant est obligatoire"))?;
        if value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(value)
        } else {
            Err(OpFault::bad_input(
                "codEtu",
                format!("numéro étudiant non numérique : {value}"),
            ))
        }
    }

    /// A year parameter that may be omitted or `toutes`.
    pub(crate) fn years(&self, name: &str, param: &'static str) -> Result<Years, OpFault> {
        match self.filter(name) {
            None => Ok(Years::All),
            Some(value) => parse_year(value, param).map(Years::One),
        }
    }

    /// A year parameter that must be a year.
    pub(crate) fn year(&self, name: &str, param: &'static str) -> Result<i32, OpFault> {
        let value = self.text(name).ok_or_else(|| {
            OpFault::bad_input(param, format!("le paramètre {name} est obligatoire"))
        })?;
        parse_year(value, param)
    }

    /// A state-letters parameter (`_etatIAE = ARE`), every state when omitted.
    pub(crate) fn states(&self, name: &str) -> States {
        match self.filter(name) {
            None => States::All,
            Some(letters) => States::Only(letters.to_ascii_uppercase()),
        }
    }
}

/// `tous` / `toutes`: Apogée's "every value".
fn is_all(value: &str) -> bool {
    value.eq_ignore_ascii_case("tous") || value.eq_ignore_ascii_case("toutes")
}

/// A four-digit academic year (`COD_ANU`).
fn parse_year(value: &str, param: &'static str) -> Result<i32, OpFault> {
    let year = (value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse::<i32>().ok())
        .flatten();
    year.ok_or_else(|| OpFault::bad_input(param, format!("année universitaire invalide : {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_connectors::xml;

    fn params(xml_text: &str) -> Element {
        xml::parse(xml_text.as_bytes(), None).unwrap()
    }

    #[test]
    fn absent_nil_and_empty_parameters_are_not_given() {
        let element = params(
            r#"<op xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><_a/><_b xsi:nil="true"/><_c> x </_c><_d>toutes</_d></op>"#,
        );
        let p = Params::new(&element);
        assert_eq!(
            (p.text("_a"), p.text("_b"), p.text("_zz")),
            (None, None, None)
        );
        assert_eq!(p.text("_c"), Some("x"));
        assert_eq!(p.filter("_d"), None);
        assert_eq!(p.years("_d", "d"), Ok(Years::All));
    }

    #[test]
    fn malformed_parameters_are_noncoherent_input() {
        let element = params("<op><_codEtu>12a</_codEtu><_annee>24</_annee></op>");
        let p = Params::new(&element);
        let fault = p.cod_etu().unwrap_err();
        assert_eq!(
            fault.faultstring(),
            "technical.parameter.noncoherentinput.codEtu"
        );
        assert_eq!(
            p.years("_annee", "annee").unwrap_err().faultstring(),
            "technical.parameter.noncoherentinput.annee"
        );
        assert_eq!(
            p.year("_codAnu", "codAnu").unwrap_err().faultstring(),
            "technical.parameter.noncoherentinput.codAnu"
        );
    }

    #[test]
    fn state_letters_filter() {
        let element = params("<op><_etatIAE>are</_etatIAE></op>");
        let states = Params::new(&element).states("_etatIAE");
        assert!(states.contains("A") && states.contains("E") && !states.contains("P"));
        assert!(States::All.contains("P"));
    }
}
