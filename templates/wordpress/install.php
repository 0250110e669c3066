<?php
// Installs the site (tables, title, administrator) from the instance's parameters.
define('WP_INSTALLING', true);
$_SERVER['HTTP_HOST'] = parse_url(getenv('site_url'), PHP_URL_HOST) ?: 'localhost';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
require '/usr/share/wordpress/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
if (is_blog_installed()) {
	echo "WordPress is already installed\n";
	exit(0);
}
$r = wp_install(getenv('site_name'), getenv('admin_user'), getenv('admin_email'), true, '', getenv('admin_password'));
echo "WordPress installed: " . get_option('blogname') . "\n";
