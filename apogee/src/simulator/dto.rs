//! Writing Apogée DTOs: one builder for every operation, so that field order and nil
//! handling live in one place.
//!
//! A [`Dto`] is filled by name; [`Dto::into_param`] writes every field of its
//! [`Layout`] in schema order, the ones left unset as `xsi:nil="true"` (the contract makes
//! every field required and nillable). The result is a [`Param`] tree that
//! `conpere_connectors::soap` renders.

use super::layouts::Layout;
use conpere_connectors::soap::Param;

/// The value of one field.
#[derive(Debug, Clone)]
enum Value {
    /// Simple content (escaped when written).
    Text(String),
    /// A nested DTO.
    Dto(Dto),
    /// An Apogée `Tableau…` list: the field wraps one `<item>` per DTO.
    Items(Vec<Dto>),
}

/// One DTO being filled: its layout and the fields set so far.
#[derive(Debug, Clone)]
pub(crate) struct Dto {
    layout: &'static Layout,
    values: Vec<(&'static str, Value)>,
}

impl Dto {
    /// An empty DTO: every field nil until set.
    pub(crate) fn new(layout: &'static Layout) -> Dto {
        Dto {
            layout,
            values: Vec::new(),
        }
    }

    /// Sets a simple field.
    pub(crate) fn text(self, field: &'static str, value: impl Into<String>) -> Dto {
        self.set(field, Value::Text(value.into()))
    }

    /// Sets a simple field when there is a value; leaves it nil otherwise.
    pub(crate) fn maybe(self, field: &'static str, value: Option<impl Into<String>>) -> Dto {
        match value {
            Some(value) => self.text(field, value),
            None => self,
        }
    }

    /// Sets a nested DTO.
    pub(crate) fn dto(self, field: &'static str, value: Dto) -> Dto {
        self.set(field, Value::Dto(value))
    }

    /// Sets a nested DTO when there is one; leaves it nil otherwise.
    pub(crate) fn maybe_dto(self, field: &'static str, value: Option<Dto>) -> Dto {
        match value {
            Some(value) => self.dto(field, value),
            None => self,
        }
    }

    /// Sets a `Tableau…` list. An empty list stays nil, as Apogée's Axis serializer
    /// writes a null array.
    pub(crate) fn items(self, field: &'static str, items: Vec<Dto>) -> Dto {
        if items.is_empty() {
            return self;
        }
        self.set(field, Value::Items(items))
    }

    fn set(mut self, field: &'static str, value: Value) -> Dto {
        // Field names are written by the simulator's code, never taken from a request: a
        // name outside the layout is a bug, which the XSD validation tests would also catch.
        debug_assert!(
            self.layout.fields.contains(&field),
            "`{field}` is not a field of {}",
            self.layout.name
        );
        self.values.retain(|(name, _)| *name != field);
        self.values.push((field, value));
        self
    }

    /// The DTO as the element `name`: every field of the layout, in order.
    pub(crate) fn into_param(mut self, name: &'static str) -> Param {
        let children = self
            .layout
            .fields
            .iter()
            .map(|&field| {
                let position = self.values.iter().position(|(name, _)| *name == field);
                match position.map(|i| self.values.swap_remove(i).1) {
                    None => Param::nil(field),
                    Some(Value::Text(text)) => Param::text(field, text),
                    Some(Value::Dto(dto)) => dto.into_param(field),
                    Some(Value::Items(items)) => Param::nested(
                        field,
                        items
                            .into_iter()
                            .map(|dto| dto.into_param("item"))
                            .collect(),
                    ),
                }
            })
            .collect();
        Param::nested(name, children)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::layouts;
    use conpere_connectors::soap::params_xml;

    #[test]
    fn fields_come_out_in_layout_order_and_unset_ones_are_nil() {
        let dto = Dto::new(&layouts::ETAT_IAA_DTO)
            .text("temDosIAA", "O")
            .text("codeEtatIAA", "E & co");
        let xml = params_xml(&[dto.into_param("etatIaa")]);
        assert_eq!(
            xml,
            "<etatIaa><codeEtatIAA>E &amp; co</codeEtatIAA><libEtatIAA xsi:nil=\"true\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"/><temDosIAA>O</temDosIAA>\
             </etatIaa>"
        );
    }

    #[test]
    fn lists_wrap_items_and_empty_lists_are_nil() {
        let session = |code: &str| Dto::new(&layouts::SESSION_DTO).text("codSes", code);
        let result = Dto::new(&layouts::RESULTAT_ELP_DTO3).dto("session", session("1"));
        let contract = Dto::new(&layouts::CONTRAT_PEDAGOGIQUE_RESULTAT_ELP_EPR_DTO5)
            .items("resultatsElp", vec![result])
            .items("groupes", Vec::new());
        let xml = params_xml(&[contract.into_param("r")]);
        assert!(
            xml.contains("<resultatsElp><item><barNotElp xsi:nil"),
            "{xml}"
        );
        assert!(
            xml.contains("<session><codSes>1</codSes><libSes xsi:nil"),
            "{xml}"
        );
        assert!(xml.contains("<groupes xsi:nil=\"true\""), "{xml}");
    }

    #[test]
    fn setting_a_field_twice_keeps_the_last_value() {
        let dto = Dto::new(&layouts::SESSION_DTO)
            .text("codSes", "1")
            .text("codSes", "2");
        assert!(params_xml(&[dto.into_param("s")]).starts_with("<s><codSes>2</codSes>"));
    }
}
