<?php
// This file is part of MIM, the Moodle integration warehouse. Copy it to
// admin/tool/mergeusers/config/config.local.php (or add the 'gathering' line
// to the one the site has): tool_mergeusers then takes the pairs to merge
// from MIM's merge list (lib/mimgathering.php) instead of asking for them at
// a terminal. The plugin merges this array over its config/config.php.

defined('MOODLE_INTERNAL') || die();

return [
    'gathering' => 'MimGathering',
];
