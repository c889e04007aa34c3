package secret

import (
	"strings"
	"testing"
)

func TestRedactDSN(t *testing.T) {
	cases := map[string]string{
		"postgres://mim:pw@h:5432/db?sslmode=disable":                "postgres://mim:xxxxx@h:5432/db?sslmode=disable",
		"postgres://mim@h/db":                                        "postgres://mim@h/db",
		"postgres://h/db?password=pw&sslmode=require":                "postgres://h/db?password=xxxxx&sslmode=require",
		"host=h user=mim password=pw dbname=mim":                     "host=h user=mim password=xxxxx dbname=mim",
		"host=h password='p w' dbname=mim":                           "host=h password=xxxxx dbname=mim",
		`user="scott" password="ti ger" connectString="db:1521/SIS"`: `user="scott" password=xxxxx connectString="db:1521/SIS"`,
		"scott/tiger@sits-db:1521/SIS":                               "scott/xxxxx@sits-db:1521/SIS",
		"reader:s3cr@t@tcp(db:3306)/moodle?parseTime=false":          "reader:xxxxx@tcp(db:3306)/moodle?parseTime=false",
		"reader@unix(/run/mysqld/mysqld.sock)/moodle":                "reader@unix(/run/mysqld/mysqld.sock)/moodle",
		"reader:pw@/moodle":                                          "reader:xxxxx@/moodle",
		"":                                                           "",
		// SQL Server: URL, ADO (values may hold spaces; quotes doubled) and ODBC (braces).
		"sqlserver://mim:pw@pc-db:1433?database=Campus6":        "sqlserver://mim:xxxxx@pc-db:1433?database=Campus6",
		"server=pc-db;user id=mim;password=se cret;database=C6": "server=pc-db;user id=mim;password=xxxxx;database=C6",
		"Server=pc-db;Pwd='it''s';Database=C6":                  "Server=pc-db;Pwd=xxxxx;Database=C6",
		"odbc:server=pc-db;uid=mim;pwd={a;b}}c d};database=C6":  "odbc:server=pc-db;uid=mim;pwd=xxxxx;database=C6",
		"server=pc-db;password=\"x;y\";database=C6":             "server=pc-db;password=xxxxx;database=C6",
		"host=h password=a pw=b dbname=x":                       "host=h password=xxxxx pw=b dbname=x",
	}
	for in, want := range cases {
		if got := RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// Password finds what RedactDSN hides, so drivers' errors can be scrubbed.
func TestDSNPassword(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://mim:s3cret@127.0.0.1/mim":                      "s3cret",
		"postgres://mim@127.0.0.1/mim?password=s3cret&sslmode=x":   "s3cret",
		"host=x user=mim password=s3cret dbname=y":                 "s3cret",
		"host=x password='se cret' dbname=y":                       "se cret",
		`host=x password='it\'s' dbname=y`:                         "it's",
		"mim_reader/s3cret@sits-db:1521/SIS":                       "s3cret",
		`user="mim" password="s3cret" connectString="db:1521/SIS"`: "s3cret",
		"postgres://mim@127.0.0.1/mim":                             "",
		"sqlserver://mim:s3cret@pc-db?database=Campus6":            "s3cret",
		"server=pc-db;user id=mim;password=se cret;database=C6":    "se cret",
		"Server=pc-db;PWD='it''s';Database=C6":                     "it's",
		"odbc:server=pc-db;pwd={a;b}}c d};database=C6":             "a;b}c d",
		"server=pc-db;user id=mim;database=C6":                     "",
		"mim:my@pw@tcp(db:3306)/moodle":                            "my@pw",
	} {
		if got := DSN(dsn).Password(); got != want {
			t.Errorf("Password(%q) = %q, want %q", dsn, got, want)
		}
		if pw := DSN(dsn).Password(); pw != "" && strings.Contains(RedactDSN(dsn), pw) {
			t.Errorf("RedactDSN(%q) = %q still shows the password", dsn, RedactDSN(dsn))
		}
	}
}

// The password is redacted where it stands as a password, never as letters
// of other words: with password "mim" the user and database stay readable.
func TestScrubPasswordByField(t *testing.T) {
	for text, want := range map[string]string{
		"failed to connect to `user=mim database=mim_demo`: password authentication failed": "failed to connect to `user=mim database=mim_demo`: password authentication failed",
		"cannot parse `host=h user=mim password=mim dbname=mim_demo`: x":                    "cannot parse `host=h user=mim password=xxxxx dbname=mim_demo`: x",
		"dial postgres://mim:mim@127.0.0.1:5432/mim_demo: refused":                          "dial postgres://mim:xxxxx@127.0.0.1:5432/mim_demo: refused",
		`ORA-01017 for mim/mim@sits-db:1521/MIM (password='mim')`:                           `ORA-01017 for mim/xxxxx@sits-db:1521/MIM (password=xxxxx)`,
		"password=mimosa is another one, PASSWORD = mim;":                                   "password=mimosa is another one, PASSWORD = xxxxx;",
	} {
		if got := ScrubPassword(text, "mim"); got != want {
			t.Errorf("ScrubPassword(%q)\n got %q\nwant %q", text, got, want)
		}
	}
	if got := ScrubPassword("postgres://u:p%40ss@h/db", "p@ss"); got != "postgres://u:xxxxx@h/db" {
		t.Errorf("escaped: %q", got)
	}
}
