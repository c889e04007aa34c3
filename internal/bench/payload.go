package bench

import "strconv"

// benchPayload is an enrolment as the Moodle extractor lands it (the user
// object of core_enrol_get_enrolled_users plus mim_courseid and
// mim_suspended), about 600 bytes, with its keys in Moodle's order (not
// sorted). version changes lastcourseaccess, as a night of activity would.
func benchPayload(user, course, version int) []byte {
	return appendBenchPayload(make([]byte, 0, 700), user, course, version)
}

func appendBenchPayload(b []byte, user, course, version int) []byte {
	var ub, cb, pb [20]byte
	u, c, p8 := strconv.AppendInt(ub[:0], int64(user), 10), strconv.AppendInt(cb[:0], int64(course), 10), pad8(pb[:0], user)
	b = append(b, `{"id":`...)
	b = append(b, u...)
	b = append(b, `,"username":"s`...)
	b = append(b, p8...)
	b = append(b, `","firstname":"Firstname`...)
	b = append(b, u...)
	b = append(b, `","lastname":"Lastname`...)
	b = append(b, c...)
	b = append(b, `","fullname":"Firstname`...)
	b = append(b, u...)
	b = append(b, ` Lastname`...)
	b = append(b, c...)
	b = append(b, `","email":"s`...)
	b = append(b, p8...)
	b = append(b, `@students.example.ac.uk","department":"Science","institution":"Example University","idnumber":"`...)
	b = append(b, p8...)
	b = append(b, `","firstaccess":1727740800,"lastaccess":1730419200,"lastcourseaccess":`...)
	b = strconv.AppendInt(b, 1730419200+int64(version)*86400, 10)
	b = append(b, `,"city":"London","country":"GB","profileimageurlsmall":"https://moodle.example.ac.uk/theme/image.php/boost/core/1795353844/u/f2",`...)
	b = append(b, `"customfields":[{"type":"text","value":"`...)
	b = append(b, p8...)
	b = append(b, `","name":"Student number","shortname":"studentnumber"}],"groups":[{"id":`...)
	b = strconv.AppendInt(b, int64(course)*10+int64(user%4), 10)
	b = append(b, `,"name":"Tutorial `...)
	b = append(b, byte('A'+user%4))
	b = append(b, `","description":"","descriptionformat":1}],"roles":[{"roleid":5,"name":"","shortname":"student","sortorder":0}],`...)
	b = append(b, `"mim_courseid":`...)
	b = append(b, c...)
	b = append(b, `,"mim_suspended":false}`...)
	return b
}

func pad8(dst []byte, n int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], int64(n), 10)
	for i := len(s); i < 8; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}
