<?php
// This file is part of MIM, the Moodle integration warehouse. It runs inside
// Moodle, as part of the admin tool tool_mergeusers, and is distributed under
// the GNU GPL v3 or later, as Moodle is.

/**
 * MIM's gathering for tool_mergeusers: the merge list MIM wrote, pair by pair.
 *
 * tool_mergeusers' command line (cli/climerger.php) merges the pairs of users
 * a "gathering" hands it. The stock gathering asks for them at a terminal;
 * this one reads the merge list MIM delivers (merge-<site>-<runid>.csv,
 * docs/formats.md in MIM's repository) and hands over each pair in the
 * file's order, except those it must refuse:
 *
 *  - an id that is not a positive number, or a pair merging an account into
 *    itself                                                      [bad_ids]
 *  - an account that does not exist, or is deleted                [no_user]
 *  - an account whose username is no longer the one the file names: the
 *    file is stale, or meant for another site                    [username]
 *  - a removed account the plugin's log shows already merged away [merged]
 *  - a kept account the plugin's log shows merged away       [target_gone]
 *  - a kept account that is the account to remove of a pair refused
 *    earlier in the same file                               [kept_refused]
 *
 * A file that is not a merge list (a column missing, a row of the wrong
 * width, seq not 1, 2, 3, ...) is refused whole before anything is merged.
 * Every decision, and the plugin's outcome of every pair handed over, is
 * written to the log file (one line per pair) and to the terminal.
 *
 * Install (docs/moodle-side.md in MIM's repository): copy this file to
 * admin/tool/mergeusers/lib/mimgathering.php and select it in
 * admin/tool/mergeusers/config/config.local.php ('gathering' =>
 * 'MimGathering'); run, as the web-server user:
 *
 *   MIM_MERGE_FILE=/path/merge-main-123.csv php admin/tool/mergeusers/cli/climerger.php
 *
 * MIM_MERGE_LOG names the log file (default: the merge list's path + .log).
 *
 * @package    tool_mergeusers
 * @copyright  MIM
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

/**
 * Hands tool_mergeusers the pairs of a MIM merge list it may merge.
 */
class MimGathering implements Gathering {
    /** The columns the gathering reads; the others are for people. */
    const COLUMNS = ['seq', 'from_userid', 'to_userid', 'from_username', 'to_username'];

    /** @var string the merge list. */
    private $file;
    /** @var string the log file. */
    private $logfile;
    /** @var array the pairs of the file, in order: objects seq, from, to, fromname, toname, badids. */
    private $pairs = [];
    /** @var int index in $pairs of the current pair. */
    private $index = -1;
    /** @var stdClass|null the pair handed over now (fromid, toid), null at the end. */
    private $current = null;
    /** @var stdClass|null the pair handed over last, whose outcome is not logged yet. */
    private $handed = null;
    /** @var array removed account ids of the pairs refused so far. */
    private $refusedfrom = [];
    /** @var int pairs handed over and refused. */
    private $nhanded = 0;
    private $nrefused = 0;

    /**
     * Reads the whole merge list named by MIM_MERGE_FILE.
     *
     * @throws moodle_exception|RuntimeException when it is not a merge list: nothing is merged.
     */
    public function __construct() {
        $file = getenv('MIM_MERGE_FILE');
        if ($file === false || $file === '') {
            throw new RuntimeException('MIM_MERGE_FILE is not set: name the merge list MIM delivered; nothing merged');
        }
        $this->file = $file;
        $log = getenv('MIM_MERGE_LOG');
        $this->logfile = ($log === false || $log === '') ? $file . '.log' : $log;
        $this->pairs = self::read($file);
        $this->log(sprintf('merge list %s: %d pairs (sha256 %s)', $file, count($this->pairs), hash_file('sha256', $file)));
    }

    /**
     * Reads a merge list whole, or throws saying why it is not one.
     *
     * @param string $file path
     * @return array the pairs
     */
    public static function read(string $file): array {
        $fh = @fopen($file, 'r');
        if ($fh === false) {
            throw new RuntimeException("cannot open the merge list $file; nothing merged");
        }
        try {
            // The escape character is disabled: MIM writes RFC 4180 CSV.
            $head = fgetcsv($fh, 0, ',', '"', '');
            if (!is_array($head) || $head === [null]) {
                throw new RuntimeException("$file is empty: not a merge list; nothing merged");
            }
            $head[0] = preg_replace('/^\xEF\xBB\xBF/', '', $head[0]);
            $col = array_flip(array_map('trim', $head));
            foreach (self::COLUMNS as $c) {
                if (!isset($col[$c])) {
                    throw new RuntimeException("$file has no column $c: not a merge list; nothing merged");
                }
            }
            $pairs = [];
            for ($line = 2; ($rec = fgetcsv($fh, 0, ',', '"', '')) !== false; $line++) {
                if ($rec === [null]) {
                    continue; // A blank line.
                }
                if (count($rec) !== count($head)) {
                    throw new RuntimeException(sprintf('%s line %d has %d fields, the header %d; nothing merged',
                        $file, $line, count($rec), count($head)));
                }
                $seq = $rec[$col['seq']];
                if ($seq !== (string)(count($pairs) + 1)) {
                    throw new RuntimeException(sprintf('%s line %d: seq "%s" is not %d: the pairs are not in order; nothing merged',
                        $file, $line, $seq, count($pairs) + 1));
                }
                $from = $rec[$col['from_userid']];
                $to = $rec[$col['to_userid']];
                $pairs[] = (object)[
                    'seq' => (int)$seq,
                    'from' => (int)$from,
                    'to' => (int)$to,
                    'fromname' => $rec[$col['from_username']],
                    'toname' => $rec[$col['to_username']],
                    'badids' => !self::positive($from) || !self::positive($to),
                ];
            }
            return $pairs;
        } finally {
            fclose($fh);
        }
    }

    private static function positive(string $s): bool {
        return preg_match('/^[0-9]+$/', $s) === 1 && (int)$s > 0;
    }

    /**
     * Why a pair must not be handed over: [code, reason], or ['', ''].
     */
    private function refusal(stdClass $p): array {
        global $DB;
        if ($p->badids) {
            return ['bad_ids', 'the user ids are not positive numbers'];
        }
        if ($p->from === $p->to) {
            return ['bad_ids', 'merges an account into itself'];
        }
        foreach ([[$p->from, $p->fromname], [$p->to, $p->toname]] as [$id, $name]) {
            $u = $DB->get_record('user', ['id' => $id], 'id, username, deleted', IGNORE_MISSING);
            if (!$u || !empty($u->deleted)) {
                return ['no_user', "user $id does not exist"];
            }
            if ($u->username !== $name) {
                return ['username', sprintf('user %d is "%s" now, not "%s"', $id, $u->username, $name)];
            }
        }
        $done = $DB->get_records('tool_mergeusers', ['fromuserid' => $p->from, 'success' => 1], 'id', 'id, touserid', 0, 1);
        if ($done) {
            $l = reset($done);
            return ['merged', sprintf('user %d was already merged into %d (log id %d)', $p->from, $l->touserid, $l->id)];
        }
        $gone = $DB->get_records('tool_mergeusers', ['fromuserid' => $p->to, 'success' => 1], 'id', 'id, touserid', 0, 1);
        if ($gone) {
            $l = reset($gone);
            return ['target_gone', sprintf('user %d, to keep, was merged into %d (log id %d)', $p->to, $l->touserid, $l->id)];
        }
        if (isset($this->refusedfrom[$p->to])) {
            return ['kept_refused', "user {$p->to}, to keep, is the account to remove of a pair refused before"];
        }
        return ['', ''];
    }

    /**
     * Logs what the plugin made of the pair handed over last.
     */
    private function outcome(): void {
        global $DB;
        if ($this->handed === null) {
            return;
        }
        $p = $this->handed;
        $this->handed = null;
        $rows = $DB->get_records('tool_mergeusers', ['fromuserid' => $p->from, 'touserid' => $p->to], 'id DESC', 'id, success', 0, 1);
        if (!$rows) {
            $this->log(sprintf('pair %d (%d into %d): handed to tool_mergeusers: no log row', $p->seq, $p->from, $p->to));
            return;
        }
        $l = reset($rows);
        $this->log(sprintf('pair %d (%d into %d): handed to tool_mergeusers: %s, log id %d', $p->seq, $p->from, $p->to,
            empty($l->success) ? 'error' : 'success', $l->id));
    }

    private function log(string $line): void {
        $line = date('c') . ' ' . $line;
        if (function_exists('cli_writeln')) {
            cli_writeln($line);
        } else {
            echo $line, "\n";
        }
        if (@file_put_contents($this->logfile, $line . "\n", FILE_APPEND | LOCK_EX) === false) {
            throw new RuntimeException("cannot write the log file {$this->logfile}; stopping");
        }
    }

    public function rewind(): void {
        $this->index = -1;
        $this->refusedfrom = [];
        $this->nhanded = $this->nrefused = 0;
        $this->next();
    }

    public function next(): void {
        $this->outcome();
        while (++$this->index < count($this->pairs)) {
            $p = $this->pairs[$this->index];
            [$code, $reason] = $this->refusal($p);
            if ($code === '') {
                $this->handed = $p;
                $this->nhanded++;
                $this->current = (object)['fromid' => $p->from, 'toid' => $p->to];
                return;
            }
            $this->refusedfrom[$p->from] = true;
            $this->nrefused++;
            $this->log(sprintf('pair %d (%d into %d): refused [%s] %s', $p->seq, $p->from, $p->to, $code, $reason));
        }
        $this->current = null;
        $this->log(sprintf('%d of %d pairs handed to tool_mergeusers, %d refused', $this->nhanded, count($this->pairs), $this->nrefused));
    }

    public function valid(): bool {
        return $this->current !== null;
    }

    public function current(): mixed {
        return $this->current;
    }

    public function key(): mixed {
        return $this->index;
    }
}
