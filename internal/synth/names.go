package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode"
)

// Reference vocabularies. Every name, code and identifier below is invented.

var facultyList = []struct{ code, name string }{
	{"ART", "Faculty of Arts and Humanities"},
	{"MPS", "Faculty of Mathematical and Physical Sciences"},
	{"EDU", "IOE, Faculty of Education and Society"},
	{"MED", "Faculty of Medical Sciences"},
	{"ENG", "Faculty of Engineering Sciences"},
	{"LIF", "Faculty of Life Sciences"},
	{"SHS", "Faculty of Social and Historical Sciences"},
	{"LAW", "Faculty of Laws"},
	{"BEA", "The Bartlett Faculty of the Built Environment"},
	{"BRN", "Faculty of Brain Sciences"},
	{"PHS", "Faculty of Population Health Sciences"},
	{"SLA", "School of Slavonic and East European Studies"},
	{"CMS", "Centre for Multidisciplinary Studies"},
	{"LCC", "Language and Cultural Centre"},
	{"GSM", "Global School of Management"},
}

var subjects = []string{
	"Greek and Latin", "Chemistry", "Physics and Astronomy", "Mathematics", "Statistical Science",
	"Computer Science", "Earth Sciences", "Space and Climate Physics", "English Language and Literature",
	"History", "Philosophy", "Classics", "Hebrew and Jewish Studies", "Scandinavian Studies", "Dutch",
	"German", "French", "Italian", "Spanish and Latin American Studies", "Comparative Literature",
	"Information Studies", "Art History", "Fine Art", "Economics", "Political Science", "Geography",
	"Anthropology", "Archaeology", "Laws", "Architecture", "Planning", "Construction and Project Management",
	"Civil Engineering", "Mechanical Engineering", "Electronic and Electrical Engineering",
	"Chemical Engineering", "Biochemical Engineering", "Medical Physics", "Security and Crime Science",
	"Management Science", "Psychology and Language Sciences", "Linguistics", "Neuroscience",
	"Pharmacology", "Pharmacy", "Genetics", "Evolution and Environment", "Structural Biology",
	"Cell and Developmental Biology", "Infection and Immunity", "Cardiovascular Science", "Surgery",
	"Medicine", "Clinical Sciences", "Ophthalmology", "Child Health", "Women's Health", "Epidemiology",
	"Global Health", "Primary Care", "Education, Practice and Society", "Learning and Leadership",
	"Culture, Communication and Media", "Curriculum and Pedagogy", "Social Research", "Psychology and Human Development",
	"Arts and Sciences", "Slavonic Studies", "East European Languages", "Urban Studies", "Energy",
	"Sustainable Resources", "Public Policy", "Risk and Disaster Reduction", "Biomedical Engineering",
	"Nanotechnology", "Cancer Institute", "Neurology", "Ear Institute", "Orthopaedics", "Eastman Dental",
	"Behavioural Science", "Tropical Medicine", "Health Informatics", "Sports Medicine", "Nursing",
	"Music", "Film Studies", "Digital Humanities", "Museum Studies", "Conservation", "Egyptology",
	"Ancient History", "Medieval Studies", "Renaissance Studies", "Translation Studies", "Creative Writing",
	"Advanced Research Computing", "Data Science", "Quantum Science", "Materials Science",
	"Environmental Engineering", "Photonics", "Robotics", "Bioinformatics", "Language Teaching", "Business",
}

var topicWords = []string{
	"Survey", "Foundations", "Methods", "Theory", "Practice", "Analysis", "Spectroscopy", "Dynamics",
	"Ethics", "Texts", "Systems", "Design", "Modelling", "Research Project", "Seminar", "Workshop",
	"Laboratory", "Fieldwork", "Dissertation", "Topics", "Perspectives", "Principles", "Structures",
}

var topicAdjectives = []string{
	"Introductory", "Intermediate", "Advanced", "Applied", "Contemporary", "Classical", "Critical",
	"Comparative", "Quantitative", "Qualitative", "Experimental", "Computational", "Global", "Modern",
}

var firstNames = []string{
	"Amara", "Tomás", "Oliver", "Amelia", "Noah", "Isla", "Muhammad", "Ava", "Leo", "Mia", "Arthur",
	"Freya", "Yusuf", "Zoë", "José", "François", "Søren", "Łukasz", "Björn", "Ångström", "Chloé",
	"Aoife", "Siobhán", "Niamh", "Oisín", "Wei", "Jun", "Hiro", "Priya", "Arjun", "Aisha", "Fatima",
	"Omar", "Lucía", "Mateo", "Elif", "Çağla", "İlkay", "Şule", "Αλέξανδρος", "Дмитрий", "Anna",
	"Sophie", "Jack", "Harry", "Charlotte", "Emily", "Grace", "Ravi", "Mei", "Kofi", "Ngozi", "Chidi",
	"Thandiwe", "Lars", "Ingrid", "Dvořák", "Zofia", "Kateřina", "Nguyễn", "Thảo", "Minh", "Ji-woo",
	"Seo-yeon", "Hannah", "Daniel", "Samuel", "Ella", "Lily", "Rosie", "Max", "Ben", "Ethan", "Maya",
}

var surnames = []string{
	"Okafor-Lindqvist", "Ó Briain", "Smith", "Jones", "Williams", "Brown", "Taylor", "Davies", "Evans",
	"Wilson", "Thomas", "Johnson", "Roberts", "Walker", "Wright", "Robinson", "Thompson", "White",
	"Müller", "Schröder", "García", "Fernández", "López", "Martín", "Nguyễn", "Trần", "Lê", "Phạm",
	"Wang", "Li", "Zhang", "Liu", "Chen", "Kim", "Park", "Lee", "Patel", "Shah", "Singh", "Khan",
	"Ahmed", "Hussain", "Rahman", "Kowalski", "Nowak", "Wiśniewski", "Novák", "Dvořák", "Svensson",
	"Johansson", "Nielsen", "Jensen", "Çelik", "Yılmaz", "Şahin", "Öztürk", "Papadopoulos", "Иванов",
	"王", "李", "O'Connor", "O'Neill", "MacDonald", "McLeod", "Fitzgerald", "Adeyemi", "Mensah",
	"Okonkwo", "Van der Berg", "De Souza", "D'Angelo", "Rossi", "Russo", "Bianchi", "Dubois", "Lefèvre",
}

// personName picks from list, taking a name outside ASCII about one time in
// seven (the lists hold many, to exercise UTF-8 handling).
func personName(r *rand.Rand, list []string) string {
	for {
		n := list[r.IntN(len(list))]
		if !hasNonASCII(n) || chance(r, 0.15) {
			return n
		}
	}
}

// periods are UCL PSL codes with weights; the slash is significant.
var periods = []weighted{
	{"T1", 25}, {"T2", 25}, {"T3", 8}, {"T1/2", 12}, {"T1/2/3", 8}, {"YEAR", 8}, {"T2/3", 4},
	{"T3/1", 2}, {"S1", 2}, {"LSR", 3}, {"SUMMER", 2}, {"T1/3", 1},
}

// enrolmentStatuses are SCE statuses with weights (per thousand).
var enrolmentStatuses = []weighted{
	{"E", 840}, {"XE", 30}, {"PE", 20}, {"ED", 15}, {"ES", 5}, {"I", 20}, {"CI", 10}, {"IR", 5},
	{"L", 20}, {"LE", 5}, {"XF", 15}, {"XN", 5}, {"IS", 5}, {"CE", 5},
}

// enrols is the enrol = Y set of ref.sits_enrolment_status (migration 00030).
var enrols = map[string]bool{
	"E": true, "ED": true, "ES": true, "ET": true, "EQ": true, "PE": true, "XE": true,
	"I": true, "CI": true, "IR": true, "IRF": true, "LRF": true,
}

// regLevel is the level of a module registration status (ref.sits_registration_status).
var regLevel = map[string]int{"CON": 3, "APP": 2, "NEW": 1, "REJ": 0}

// groupKinds are CMIS group code stems and names.
var groupKinds = []struct{ code, name string }{
	{"SEM", "Seminar"}, {"TUT", "Tutorial"}, {"LAB", "Laboratory"}, {"GRP", "Group"}, {"WKS", "Workshop"},
}

// weighted is a value and its relative weight.
type weighted struct {
	v string
	w int
}

// pick draws a value by weight.
func pick(r *rand.Rand, items []weighted) string {
	total := 0
	for _, it := range items {
		total += it.w
	}
	n := r.IntN(total)
	for _, it := range items {
		n -= it.w
		if n < 0 {
			return it.v
		}
	}
	return items[len(items)-1].v
}

// chance is true with probability p.
func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// guids hands out Oracle SYS_GUID-like identifiers: 32 upper-case hex digits
// whose last 20 are shared within a batch, as real SYS_GUIDs of one database
// are. The first 12 are a bijection of a counter, so a batch never repeats.
type guids struct {
	suffix string
	salt   uint64
	n      uint64
}

func newGUIDs(r *rand.Rand) *guids {
	return &guids{suffix: fmt.Sprintf("%04X%016X", r.Uint32()&0xFFFF, r.Uint64()), salt: r.Uint64()}
}

func (g *guids) next() string {
	g.n++
	v := (g.n*0x9E3779B97F4A7C15 + g.salt) & 0xFFFFFFFFFFFF
	return fmt.Sprintf("%012X%s", v, g.suffix)
}

// letters returns n random letters from alphabet.
func letters(r *rand.Rand, n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

const (
	lower = "abcdefghijklmnopqrstuvwxyz"
	upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// unique draws from gen until it produces a value not in used.
func unique(used map[string]bool, gen func() string) string {
	for {
		s := gen()
		if !used[s] {
			used[s] = true
			return s
		}
	}
}

// asciiFold lowers s and keeps ASCII letters and digits, folding common
// Latin accents (for e-mail local parts).
func asciiFold(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '\'':
			b.WriteByte('-')
		default:
			if f, ok := fold[r]; ok {
				b.WriteString(f)
			}
		}
	}
	return strings.Trim(b.String(), "-")
}

var fold = map[rune]string{
	'á': "a", 'à': "a", 'â': "a", 'ä': "a", 'å': "a", 'ã': "a", 'ą': "a", 'æ': "ae",
	'ç': "c", 'č': "c", 'ć': "c", 'ď': "d", 'é': "e", 'è': "e", 'ê': "e", 'ë': "e", 'ě': "e", 'ę': "e",
	'ğ': "g", 'í': "i", 'ì': "i", 'î': "i", 'ï': "i", 'ı': "i", 'i': "i", 'ł': "l", 'ñ': "n", 'ń': "n", 'ň': "n",
	'ó': "o", 'ò': "o", 'ô': "o", 'ö': "o", 'ø': "o", 'õ': "o", 'ř': "r", 'š': "s", 'ś': "s", 'ş': "s",
	'ß': "ss", 'ú': "u", 'ù': "u", 'û': "u", 'ü': "u", 'ů': "u", 'ý': "y", 'ž': "z", 'ź': "z", 'ż': "z",
	'ễ': "e", 'ả': "a", 'ạ': "a", 'ầ': "a", 'ơ': "o", 'ư': "u", 'đ': "d", 'ị': "i", 'ọ': "o", 'ấ': "a",
	'ậ': "a", 'ộ': "o", 'ứ': "u", 'ừ': "u",
}

// hasNonASCII reports a rune outside ASCII.
func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// codeFrom makes an upper-case code of length n from a name's letters.
func codeFrom(name string, n int) string {
	var b []byte
	for _, w := range strings.Fields(name) {
		w = strings.ToUpper(asciiFold(w))
		w = strings.ReplaceAll(w, "-", "")
		if len(w) > 0 {
			b = append(b, w...)
		}
	}
	for len(b) < n {
		b = append(b, 'X')
	}
	return string(b[:n])
}
