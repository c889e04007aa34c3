package guard

// The budget of the student codes a profile CSV moves after observed merges
// (export/feeds, mart.exp_idnumber_carry): each move clears the idnumber of
// a merged-away account, a removal, so a night that would move more than
// idnumber_carry_budget of them on a site holds them back (the rest of the
// file goes out) unless idnumber_carry_override is set.
const (
	IDNumberCarry        = "idnumber_carry_budget"
	SettingCarryBudget   = "idnumber_carry_budget"
	SettingCarryOverride = "idnumber_carry_override"
)
