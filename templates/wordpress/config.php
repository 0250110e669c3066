<?php
/* Written by Condo from the instance's parameters. */
define('DB_NAME', '{{ db_name }}');
define('DB_USER', 'wordpress');
define('DB_PASSWORD', '{{ db_password }}');
define('DB_HOST', 'localhost');
define('WP_HOME', '{{ site_url }}');
define('WP_SITEURL', '{{ site_url }}');
define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');
define('FS_METHOD', 'direct');
$table_prefix = 'wp_';
