/* keeld: placeholder entry point while the daemon is assembled. */
int main(void)
{
    return 0;
}
