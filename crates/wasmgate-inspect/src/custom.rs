//! Decoding of the custom sections people usually want to see: `name`,
//! `component-name` and `producers`.
//!
//! Validation does not look inside custom sections, so a malformed one is
//! reported as [`CustomDetails::Malformed`] rather than failing the report.

use wasmparser::{
    BinaryReaderError, ComponentName, ComponentNameSectionReader, CustomSectionReader, KnownCustom,
    Name, NameSectionReader, ProducersSectionReader,
};

use crate::report::{CustomDetails, ProducersField};

/// Decodes the well-known custom section `reader`, if it is one.
pub(crate) fn details(reader: &CustomSectionReader<'_>) -> CustomDetails {
    let decoded = match reader.as_known() {
        KnownCustom::Name(names) => name_section(names),
        KnownCustom::ComponentName(names) => component_name_section(names),
        KnownCustom::Producers(producers) => producers_section(producers),
        // `as_known` yields `Unknown` when even the field count is unreadable.
        KnownCustom::Unknown if reader.name() == "producers" => {
            return CustomDetails::Malformed("cannot read the number of fields".to_string());
        }
        _ => return CustomDetails::None,
    };
    decoded.unwrap_or_else(|err| {
        CustomDetails::Malformed(format!(
            "{} at byte offset {:#x}",
            err.message(),
            err.offset()
        ))
    })
}

fn name_section(names: NameSectionReader<'_>) -> Result<CustomDetails, BinaryReaderError> {
    let mut module_name = None;
    let mut function_names = 0;
    for subsection in names {
        match subsection? {
            Name::Module { name, .. } => module_name = Some(name.to_string()),
            Name::Function(map) => function_names = map.count(),
            _ => {}
        }
    }
    Ok(CustomDetails::Name {
        module_name,
        function_names,
    })
}

fn component_name_section(
    names: ComponentNameSectionReader<'_>,
) -> Result<CustomDetails, BinaryReaderError> {
    let mut component_name = None;
    let mut item_names: u32 = 0;
    for subsection in names {
        let count = match subsection? {
            ComponentName::Component { name, .. } => {
                component_name = Some(name.to_string());
                continue;
            }
            ComponentName::CoreFuncs(map)
            | ComponentName::CoreGlobals(map)
            | ComponentName::CoreMemories(map)
            | ComponentName::CoreTables(map)
            | ComponentName::CoreTags(map)
            | ComponentName::CoreModules(map)
            | ComponentName::CoreInstances(map)
            | ComponentName::CoreTypes(map)
            | ComponentName::Types(map)
            | ComponentName::Instances(map)
            | ComponentName::Components(map)
            | ComponentName::Funcs(map)
            | ComponentName::Values(map) => map.count(),
            ComponentName::Unknown { .. } => continue,
        };
        item_names = item_names.saturating_add(count);
    }
    Ok(CustomDetails::ComponentName {
        component_name,
        item_names,
    })
}

fn producers_section(
    producers: ProducersSectionReader<'_>,
) -> Result<CustomDetails, BinaryReaderError> {
    let mut fields = Vec::new();
    for field in producers {
        let field = field?;
        let mut values = Vec::new();
        for value in field.values {
            let value = value?;
            values.push(if value.version.is_empty() {
                value.name.to_string()
            } else {
                format!("{} {}", value.name, value.version)
            });
        }
        fields.push(ProducersField {
            name: field.name.to_string(),
            values,
        });
    }
    Ok(CustomDetails::Producers(fields))
}
