package ims_test

import (
	"bytes"
	"fmt"
	"os"

	"github.com/mimwarehouse/mim/export/ims"
)

// A delta for one course: an enrolment with its dates and group, and a drop
// that carries the roletype the user was enrolled with.
func ExampleWriter() {
	var buf bytes.Buffer
	w := ims.NewWriter(&buf)
	_ = w.WriteProperties(ims.Properties{Target: "moodle-main", Type: "delta"})
	_ = w.WriteMembership("GEOG0012-2025-T1", []ims.Member{
		{IDNumber: "21004567", RoleType: "01", Active: true,
			Begin: ims.Date{Year: 2025, Month: 9, Day: 22}, LastDay: ims.Date{Year: 2026, Month: 1, Day: 16}, Cohort: "Group B"},
		{IDNumber: "20987654", RoleType: "01", Active: false},
	})
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := ims.Validate(bytes.NewReader(buf.Bytes())); err != nil {
		fmt.Println(err)
		return
	}
	os.Stdout.Write(buf.Bytes())
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <enterprise>
	// <properties>
	//   <target>moodle-main</target>
	//   <type>delta</type>
	// </properties>
	// <membership>
	//   <sourcedid><source>MIM</source><id>GEOG0012-2025-T1</id></sourcedid>
	//   <member>
	//     <sourcedid><source>MIM</source><id>21004567</id></sourcedid>
	//     <idtype>1</idtype>
	//     <role roletype="01">
	//       <status>1</status>
	//       <timeframe><begin restrict="1">2025-09-22</begin><end restrict="1">2026-01-17</end></timeframe>
	//       <extension><cohort>Group B</cohort></extension>
	//     </role>
	//   </member>
	//   <member>
	//     <sourcedid><source>MIM</source><id>20987654</id></sourcedid>
	//     <idtype>1</idtype>
	//     <role roletype="01" recstatus="3">
	//       <status>0</status>
	//     </role>
	//   </member>
	// </membership>
	// </enterprise>
}

// The simulator's IMS "cron" reads a file the way Moodle does, element by
// element, and stops after properties naming another site.
func ExampleScanner() {
	file := `<?xml version="1.0" encoding="UTF-8"?>
<enterprise>
<properties>
  <target>moodle-main</target>
</properties>
<membership>
  <sourcedid><source>MIM</source><id>C1</id></sourcedid>
  <member>
    <sourcedid><source>MIM</source><id>u1</id></sourcedid>
    <role roletype="01">
      <status>1</status>
    </role>
  </member>
</membership>
</enterprise>
`
	sc := ims.NewScanner(bytes.NewReader([]byte(file)))
	for sc.Scan() {
		switch e := sc.Element().(type) {
		case *ims.PropertiesElement:
			if !e.HasTarget("moodle-main") {
				return
			}
		case *ims.MembershipElement:
			for _, m := range e.Members {
				fmt.Println(e.CourseIDNumber, m.IDNumber, m.RoleType, m.Enrol())
			}
		}
	}
	// Output: C1 u1 01 true
}
