//! Lazy initialization of funcref tables.
//!
//! Most modules fill their function tables with active element segments of constant
//! offsets and plain function indices. Rather than writing those elements at every
//! instantiation, strata works out at translation time which function each element
//! starts with; the runtime leaves a new table's elements *uninitialized* and resolves an
//! element from this plan the first time anything reads it. Instantiating then costs
//! nothing per element, and a pooled table slot whose pages were given back to the
//! kernel is not touched at all until the program uses the table.

use crate::{
    ConstOp, DefinedTableIndex, ElemIndex, ElemSegmentMode, EntityRef, FuncIndex, Module,
    PrimaryMap,
};
use serde::{Deserialize, Serialize};

/// The bit set in every initialized element of a `funcref` table: such a table stores
/// the function reference's address with this bit set (`1` alone for null) and zero for
/// an element not initialized yet. Function references are aligned, so the bit is free.
pub const FUNCREF_INIT_BIT: usize = 1;

/// The most elements a module's plans may hold together; segments past this budget are
/// applied at instantiation instead, so a module cannot make translation allocate much.
const MAX_PLANNED_ELEMENTS: usize = 1 << 20;

/// How a module's defined funcref tables get their initial elements.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TableInitialization {
    /// For each defined table, the function each leading element starts with (`None` for
    /// null). Elements past the end start null. Empty for tables of `externref`.
    #[serde(with = "packed_plans")]
    pub initial: PrimaryMap<DefinedTableIndex, Box<[Option<FuncIndex>]>>,
    /// The element segments this plan covers are those before this index; the active
    /// ones from it on are applied at instantiation, in order, after the plan.
    pub eager_from: ElemIndex,
}

/// Serializes each table's plan as one byte string of little-endian `u32`s
/// (`u32::MAX` for null), so that a plan of many elements loads with one copy.
mod packed_plans {
    use super::{DefinedTableIndex, FuncIndex, PrimaryMap};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Plans = PrimaryMap<DefinedTableIndex, Box<[Option<FuncIndex>]>>;

    #[derive(Serialize, Deserialize)]
    struct Packed(#[serde(with = "crate::module::byte_string")] Vec<u8>);

    pub fn serialize<S: Serializer>(plans: &Plans, s: S) -> Result<S::Ok, S::Error> {
        let packed: Vec<Packed> = plans
            .values()
            .map(|plan| {
                let words = plan.iter().map(|f| f.map_or(u32::MAX, FuncIndex::as_u32));
                Packed(words.flat_map(u32::to_le_bytes).collect())
            })
            .collect();
        packed.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Plans, D::Error> {
        let packed = Vec::<Packed>::deserialize(d)?;
        Ok(packed
            .into_iter()
            .map(|Packed(bytes)| {
                bytes
                    .chunks_exact(4)
                    .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
                    .map(|w| (w != u32::MAX).then(|| FuncIndex::from_u32(w)))
                    .collect()
            })
            .collect())
    }
}

impl TableInitialization {
    /// The function element `index` of defined table `table` starts with, if any.
    pub fn initial_func(&self, table: DefinedTableIndex, index: usize) -> Option<FuncIndex> {
        self.initial.get(table)?.get(index).copied().flatten()
    }

    /// Plans the initialization of `module`'s tables from the longest prefix of its
    /// element segments that can be evaluated now: an active segment qualifies if it
    /// writes a defined funcref table at a constant offset, inside the table's minimum
    /// size, with items that are `ref.func` or `ref.null`. Passive and declared segments
    /// write nothing and never end the prefix. Segments after the prefix keep their
    /// order by being applied at instantiation, after the plan.
    pub fn plan(module: &Module) -> TableInitialization {
        let mut initial: PrimaryMap<DefinedTableIndex, Vec<Option<FuncIndex>>> = (0..module
            .num_defined_tables())
            .map(|_| Vec::new())
            .collect();
        let mut planned = 0usize;
        let mut eager_from = module.elem_segments.len();
        for (index, segment) in module.elem_segments.iter() {
            let ElemSegmentMode::Active { table, offset } = &segment.mode else {
                continue;
            };
            let funcs: Option<Vec<Option<FuncIndex>>> = segment
                .items
                .iter()
                .map(|item| match *item.ops {
                    [ConstOp::RefFunc(f)] => Some(Some(f)),
                    [ConstOp::RefNull] => Some(None),
                    _ => None,
                })
                .collect();
            let target = module.defined_table_index(*table).filter(|&def| {
                module.tables[*table].element.heap_type.is_func()
                    && module.table_initializer(def).is_none()
            });
            let start = offset
                .as_constant_offset()
                .and_then(|s| usize::try_from(s).ok());
            let fits = |start: usize, len: usize| {
                start.checked_add(len).filter(|&end| {
                    end as u64 <= module.tables[*table].minimum
                        && planned + end <= MAX_PLANNED_ELEMENTS
                })
            };
            let (Some(def), Some(start), Some(funcs)) = (target, start, funcs) else {
                eager_from = index.index();
                break;
            };
            let Some(end) = fits(start, funcs.len()) else {
                eager_from = index.index();
                break;
            };
            let elements = &mut initial[def];
            if elements.len() < end {
                planned += end - elements.len();
                elements.resize(end, None);
            }
            elements[start..end].copy_from_slice(&funcs);
        }
        TableInitialization {
            initial: initial
                .into_iter()
                .map(|(_, v)| v.into_boxed_slice())
                .collect(),
            eager_from: ElemIndex::new(eager_from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConstExpr, ElemSegment, GlobalIndex, Table, TableIndex, WasmRefType};

    fn table(element: WasmRefType, minimum: u64) -> Table {
        Table {
            element,
            minimum,
            maximum: None,
            table64: false,
        }
    }

    fn active(table: u32, offset: ConstOp, items: &[ConstOp]) -> ElemSegment {
        ElemSegment {
            mode: ElemSegmentMode::Active {
                table: TableIndex::from_u32(table),
                offset: ConstExpr {
                    ops: Box::new([offset]),
                },
            },
            items: items
                .iter()
                .map(|op| ConstExpr {
                    ops: Box::new([*op]),
                })
                .collect(),
        }
    }

    fn f(i: u32) -> ConstOp {
        ConstOp::RefFunc(FuncIndex::from_u32(i))
    }

    #[test]
    fn constant_segments_are_planned_in_order() {
        let mut m = Module::default();
        m.tables.push(table(WasmRefType::FUNCREF, 10));
        m.elem_segments
            .push(active(0, ConstOp::I32Const(2), &[f(0), f(1), f(2)]));
        m.elem_segments.push(ElemSegment {
            mode: ElemSegmentMode::Passive,
            items: Box::new([]),
        });
        m.elem_segments
            .push(active(0, ConstOp::I32Const(3), &[ConstOp::RefNull, f(7)]));
        let plan = TableInitialization::plan(&m);
        let t = DefinedTableIndex::new(0);
        let got: Vec<_> = (0..6).map(|i| plan.initial_func(t, i)).collect();
        let func = |i| Some(FuncIndex::from_u32(i));
        assert_eq!(got, [None, None, func(0), None, func(7), None]);
        assert_eq!(plan.eager_from, ElemIndex::new(3));
    }

    #[test]
    fn the_plan_stops_at_the_first_segment_it_cannot_evaluate() {
        let mut m = Module::default();
        m.tables.push(table(WasmRefType::FUNCREF, 4));
        m.tables.push(table(WasmRefType::EXTERNREF, 4));
        // Out of bounds: instantiation must trap on it, so it stays eager, and so does
        // every later segment even though the last one could be planned.
        m.elem_segments
            .push(active(0, ConstOp::I32Const(3), &[f(0), f(1)]));
        m.elem_segments
            .push(active(0, ConstOp::I32Const(0), &[f(5)]));
        let plan = TableInitialization::plan(&m);
        assert_eq!(plan.eager_from, ElemIndex::new(0));
        assert_eq!(plan.initial_func(DefinedTableIndex::new(0), 0), None);

        for first in [
            active(1, ConstOp::I32Const(0), &[ConstOp::RefNull]),
            active(0, ConstOp::GlobalGet(GlobalIndex::from_u32(0)), &[f(0)]),
        ] {
            m.elem_segments.clear();
            m.elem_segments
                .push(active(0, ConstOp::I32Const(0), &[f(1)]));
            m.elem_segments.push(first);
            let plan = TableInitialization::plan(&m);
            assert_eq!(plan.eager_from, ElemIndex::new(1));
            let func = plan.initial_func(DefinedTableIndex::new(0), 0);
            assert_eq!(func, Some(FuncIndex::from_u32(1)));
        }
    }
}
