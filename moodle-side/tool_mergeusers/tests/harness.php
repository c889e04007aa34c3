<?php
// MIM's tests run lib/mimgathering.php here, outside Moodle, with a stand-in
// for the little of Moodle it uses ($DB->get_record, $DB->get_records, the
// Gathering interface) and for tool_mergeusers' CLI loop, which merges each
// pair the gathering hands over (cli/climerger.php and lib/merger.php do
// foreach ($gathering as $action) merge($action->toid, $action->fromid)).
//
// Usage: MIM_MERGE_FILE=list.csv MIM_MERGE_LOG=log php harness.php case.json
// case.json: {"users": [{"id", "username", "deleted"}], "log": [{"from", "to", "success"}]}
// Prints {"merged": [[from, to], ...], "error": "..."} as JSON.

define('MOODLE_INTERNAL', true);
define('CLI_SCRIPT', true);
define('IGNORE_MISSING', 0);

interface Gathering extends Iterator {
}

/** Moodle's clilib: the gathering's terminal lines go to stderr here, the result to stdout. */
function cli_writeln(string $text): void {
    fwrite(STDERR, $text . "\n");
}

/** The user and tool_mergeusers tables, in memory. */
class harness_db {
    public $tables = ['user' => [], 'tool_mergeusers' => []];

    public function get_record(string $table, array $conditions, string $fields = '*', int $strictness = IGNORE_MISSING) {
        $rows = $this->get_records($table, $conditions);
        return $rows ? reset($rows) : false;
    }

    public function get_records(string $table, ?array $conditions = null, string $sort = '', string $fields = '*',
            int $limitfrom = 0, int $limitnum = 0): array {
        $out = [];
        foreach ($this->tables[$table] as $row) {
            foreach ((array)$conditions as $k => $v) {
                if ((string)$row->$k !== (string)$v) {
                    continue 2;
                }
            }
            $out[$row->id] = $row;
        }
        if ($sort === 'id DESC') {
            krsort($out);
        } else {
            ksort($out);
        }
        return $limitnum > 0 ? array_slice($out, $limitfrom, $limitnum, true) : $out;
    }

    /** What tool_mergeusers does to the two accounts, as far as the gathering can see it. */
    public function merge(int $to, int $from): void {
        $ok = isset($this->tables['user'][$from], $this->tables['user'][$to]) && $from !== $to;
        if ($ok) {
            $this->tables['user'][$from]->suspended = 1;
            $this->tables['user'][$to]->suspended = 0;
        }
        $id = count($this->tables['tool_mergeusers']) + 1;
        $this->tables['tool_mergeusers'][$id] = (object)['id' => $id, 'fromuserid' => $from, 'touserid' => $to, 'success' => $ok ? 1 : 0];
    }
}

$case = json_decode(file_get_contents($argv[1]), false, 512, JSON_THROW_ON_ERROR);
$DB = new harness_db();
foreach ($case->users ?? [] as $u) {
    $DB->tables['user'][$u->id] = (object)['id' => $u->id, 'username' => $u->username, 'deleted' => empty($u->deleted) ? 0 : 1,
        'suspended' => 0];
}
foreach ($case->log ?? [] as $l) {
    $id = count($DB->tables['tool_mergeusers']) + 1;
    $DB->tables['tool_mergeusers'][$id] = (object)['id' => $id, 'fromuserid' => $l->from, 'touserid' => $l->to,
        'success' => empty($l->success) ? 0 : 1];
}

require(__DIR__ . '/../lib/mimgathering.php');

$out = ['merged' => [], 'error' => ''];
try {
    $gathering = new MimGathering();
    foreach ($gathering as $action) {
        $DB->merge($action->toid, $action->fromid);
        $out['merged'][] = [$action->fromid, $action->toid];
    }
} catch (Throwable $e) {
    $out['error'] = $e->getMessage();
}
echo json_encode($out), "\n";
