//! What running code costs in fuel.

use wasmparser::Operator;

/// The fuel one execution of `op` costs: nothing for operators that only shape control
/// flow or the operand stack and compile to no work of their own, one unit for the rest.
pub fn operator_fuel_cost(op: &Operator<'_>) -> i64 {
    match op {
        Operator::Nop
        | Operator::Drop
        | Operator::Block { .. }
        | Operator::Loop { .. }
        | Operator::Else
        | Operator::End
        | Operator::Unreachable
        | Operator::Return => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_is_free_and_work_costs_one() {
        assert_eq!(operator_fuel_cost(&Operator::Nop), 0);
        assert_eq!(operator_fuel_cost(&Operator::End), 0);
        assert_eq!(operator_fuel_cost(&Operator::I32Add), 1);
        assert_eq!(operator_fuel_cost(&Operator::Call { function_index: 0 }), 1);
        assert_eq!(operator_fuel_cost(&Operator::Br { relative_depth: 0 }), 1);
    }
}
